// Package config loads Shomei's one configuration file.
//
// The file is YAML, decoded strictly: an unknown or misspelt key is an error,
// not something silently ignored. Relative paths in it are relative to the
// file's own directory, so a configuration works the same whatever directory
// a command runs in. Secrets are never in the file: the HSM PIN comes from a
// PIN file or an environment variable the file names.
package config

//go:generate go run ../configdoc/gen
