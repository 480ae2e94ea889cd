//go:build unix

package jsonlines

import (
	"os"
	"syscall"
)

// deviceInode returns the device and inode of a file: what stays the same
// when the file is renamed, and differs for the new file created at its
// path.
func deviceInode(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // the field types differ by platform
	}
	return 0, 0
}
