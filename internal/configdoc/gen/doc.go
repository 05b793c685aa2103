// Command gen writes docs/configuration.md from the config structs
// (package configdoc). Run it from anywhere in the module:
//
//	go run ./internal/configdoc/gen        (make config-docs)
//
// -o - writes to standard output. Settings without a doc comment are
// listed on standard error: give each one in its struct.
package main
