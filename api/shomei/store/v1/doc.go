// Package storev1 holds the on-disk records of Shomei's bbolt store, generated
// from store.proto (edit the .proto, then `make proto`; never edit
// store.pb.go). Records are protobuf so that fields can be added without
// rewriting the database; removed fields are reserved, never reused.
package storev1
