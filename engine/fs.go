package engine

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// pebbleFS is the filesystem the engine gives pebble: the user's FS, with
// two kinds of failure turned from fatal into a failure of the DB.
//
// Pebble treats a failed fsync of a directory (its atomic marker files) and
// a failed write or sync of its MANIFEST as unrecoverable: it panics, or
// calls Logger.Fatalf, whose default exits the process. An embedded library
// must not do that to its host. So pebbleFS fails the DB first — the DB
// then acknowledges no write, and a checkpoint in progress sees the failure
// before it deletes any log segment, so the log still holds everything
// since the last good checkpoint — and then hides the error from pebble.
// From then on the MANIFEST is frozen: writes to it are dropped, so the
// on-disk store stays exactly as the last good checkpoint left it (plus,
// at most, a torn final MANIFEST record, which pebble ignores at open). A
// reopen recovers from the log.
type pebbleFS struct {
	vfs.FS
	db *DB
}

func (fs pebbleFS) Unwrap() vfs.FS { return fs.FS }

func (fs pebbleFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return guardedFile{File: f, db: fs.db, name: name}, nil
}

func (fs pebbleFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if fs.frozen(name) {
		return discardFile{}, nil
	}
	f, err := fs.FS.Create(name, category)
	return fs.wrap(name, f, err)
}

func (fs pebbleFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	if fs.frozen(name) {
		return discardFile{}, nil
	}
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.wrap(name, f, err)
}

func (fs pebbleFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if fs.frozen(newname) {
		return discardFile{}, nil
	}
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(newname, f, err)
}

// After the DB failed, pebble's on-disk state is frozen: besides the
// MANIFEST, its marker files (which name the current MANIFEST) are not
// created, and no file is removed or renamed, so that what the frozen
// MANIFEST references stays on disk. New table files may still be written:
// unreferenced, they are cleaned up at the next open.

func (fs pebbleFS) frozen(name string) bool {
	return fs.db.Err() != nil && (strings.HasPrefix(fs.FS.PathBase(name), "marker.") || strings.HasPrefix(fs.FS.PathBase(name), "MANIFEST-"))
}

func (fs pebbleFS) Remove(name string) error {
	if fs.db.Err() != nil {
		return nil
	}
	return fs.FS.Remove(name)
}

func (fs pebbleFS) RemoveAll(name string) error {
	if fs.db.Err() != nil {
		return nil
	}
	return fs.FS.RemoveAll(name)
}

func (fs pebbleFS) Rename(oldname, newname string) error {
	if fs.db.Err() != nil {
		return nil
	}
	return fs.FS.Rename(oldname, newname)
}

func (fs pebbleFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	base := fs.FS.PathBase(name)
	state := strings.HasPrefix(base, "MANIFEST-") || strings.HasPrefix(base, "marker.")
	if !state {
		return f, err
	}
	if err != nil {
		// Creating a MANIFEST or a marker is fatal to pebble: fail the DB
		// and freeze instead.
		fs.db.fail(fmt.Errorf("store: create %s: %w", name, err))
		return discardFile{}, nil
	}
	return guardedFile{File: f, db: fs.db, name: name, manifest: true}, nil
}

// guardedFile is a directory or a MANIFEST file of pebble's.
type guardedFile struct {
	vfs.File
	db       *DB
	name     string
	manifest bool
}

func (f guardedFile) frozen() bool { return f.manifest && f.db.Err() != nil }

func (f guardedFile) Write(p []byte) (int, error) {
	if f.frozen() {
		return len(p), nil
	}
	n, err := f.File.Write(p)
	if err != nil && f.manifest {
		f.db.fail(fmt.Errorf("store: write %s: %w", f.name, err))
		return len(p), nil
	}
	return n, err
}

func (f guardedFile) Sync() error {
	if f.frozen() {
		return nil
	}
	if err := f.File.Sync(); err != nil {
		f.db.fail(fmt.Errorf("store: sync %s: %w", f.name, err))
	}
	return nil
}

func (f guardedFile) SyncData() error { return f.Sync() }

func (f guardedFile) SyncTo(length int64) (bool, error) {
	if err := f.Sync(); err != nil {
		return false, err
	}
	return true, nil
}

// discardFile stands in for a file pebble creates after the DB failed, when
// creating it would change the frozen on-disk state.
type discardFile struct{ vfs.File }

func (discardFile) Close() error                           { return nil }
func (discardFile) Read([]byte) (int, error)               { return 0, io.EOF }
func (discardFile) ReadAt([]byte, int64) (int, error)      { return 0, io.EOF }
func (discardFile) Write(p []byte) (int, error)            { return len(p), nil }
func (discardFile) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
func (discardFile) Preallocate(int64, int64) error         { return nil }
func (discardFile) Stat() (vfs.FileInfo, error) {
	return nil, errors.New("engine: discarded file (the DB failed)")
}
func (discardFile) Sync() error                 { return nil }
func (discardFile) SyncTo(int64) (bool, error)  { return true, nil }
func (discardFile) SyncData() error             { return nil }
func (discardFile) Prefetch(int64, int64) error { return nil }
func (discardFile) Fd() uintptr                 { return vfs.InvalidFd }
