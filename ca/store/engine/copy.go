package engine

import "fmt"

// CopyBucket copies every key of bucket name from src into dst, which must
// be a write transaction (it makes the bucket when it can). Keys dst holds
// that src does not are kept.
func CopyBucket(dst, src Tx, name []byte) error {
	from := src.Bucket(name)
	if from == nil {
		return nil
	}
	to, err := dst.CreateBucketIfNotExists(name)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", name, err)
	}
	return from.ForEach(func(k, v []byte) error { return to.Put(k, v) })
}
