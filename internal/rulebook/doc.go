// Package rulebook keeps docs/rules.md, the project's own rule book, and
// the R-… ids cited across the repository in step.
//
// Code, tests, protos, configuration and documents cite domain rules by id
// (R-P1, R-V4, …). Check walks the repository and reports every cited id
// that has no "## R-XX — title" heading in docs/rules.md, naming the file
// and line, so that an id always leads somewhere inside the repository. It
// also checks the rule book's own citations, so they cannot rot: every
// path in backquotes exists, every "`path.go: Name, Other`" names
// declarations (functions, methods as Type.Method, types, variables,
// constants) of that file, and every rule cites at least one test
// function that exists. TestRuleBook runs it on the repository.
package rulebook
