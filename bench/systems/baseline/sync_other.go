//go:build !linux

package baseline

import "os"

// syncFunc returns f.Sync: the portable durable flush (F_FULLFSYNC on
// macOS) where fdatasync is not available.
func syncFunc(f *os.File) func() error { return f.Sync }

// preallocate does nothing off Linux: no portable fallocate in the standard
// library. The fdatasyncs of the first pass then also commit file growth.
func preallocate(*os.File, int64) error { return nil }
