//go:build !linux

package vfs

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

func preallocate(*os.File, int64, int64) error { return nil }

func extend(*os.File, int64) error { return nil }

func startWriteback(*os.File, int64, int64) error { return nil }
