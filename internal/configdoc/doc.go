// Package configdoc writes docs/configuration.md, the reference of every
// setting in the YAML files of shomei-ca (config.Config) and shomei-ocsp
// (config.Replica), from the config structs themselves.
//
// It reads the Go source with go/ast, not reflection, so that a setting's
// doc comment, the one home of what it means, its bounds and its default,
// is what the reference says: yaml tags give the keys, field types the
// value types, doc comments the text. Structs from other packages of the
// module (internal/server's listener limits, hsm.PINSource inlined) are
// followed through the imports. Nothing is written by hand in the
// Markdown, so it cannot drift: TestConfigurationUpToDate regenerates it
// in memory and fails when the committed file differs (run make
// config-docs), and TestEveryFieldDocumented fails on a setting without a
// doc comment.
package configdoc
