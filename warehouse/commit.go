package warehouse

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// AtomicFile is one file of a WriteFilesAtomic commit: where it goes and
// what writes its content.
type AtomicFile struct {
	Path  string
	Write func(w io.Writer) error
}

// WriteFilesAtomic writes several files, each of which appears whole or
// not at all (as WriteFileAtomic), with fewer waits: every file is written
// to a temp name and fsynced (concurrently), then all are renamed, then
// every folder is fsynced once however many files it got. Folders it had
// to create are fsynced in their parents as well, so that a new hour
// folder survives a power loss with its files. It returns the bytes
// written per file. On an error the temp files are removed; files renamed
// before it stay, each whole.
func WriteFilesAtomic(files []AtomicFile) ([]int64, error) {
	sizes := make([]int64, len(files))
	syncDirs := map[string]bool{}
	for _, f := range files {
		created, err := mkdirAllNew(filepath.Dir(f.Path))
		if err != nil {
			return nil, err
		}
		syncDirs[filepath.Dir(f.Path)] = true
		for _, d := range created {
			syncDirs[filepath.Dir(d)] = true
		}
	}
	tmps := make([]string, len(files))
	err := forEachConcurrently(len(files), func(i int) error {
		tmp, n, err := writeTemp(files[i])
		tmps[i], sizes[i] = tmp, n
		return err
	})
	if err == nil {
		for i, f := range files {
			if err = os.Rename(tmps[i], f.Path); err != nil {
				err = fmt.Errorf("renaming %s: %w", tmps[i], err)
				break
			}
			tmps[i] = ""
		}
	}
	for _, tmp := range tmps {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(syncDirs))
	for d := range syncDirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	if err := forEachConcurrently(len(dirs), func(i int) error { return SyncDir(dirs[i]) }); err != nil {
		return nil, err
	}
	return sizes, nil
}

// writeTemp writes f to a fsynced temp file beside its path.
func writeTemp(f AtomicFile) (tmp string, size int64, err error) {
	tmp = filepath.Join(filepath.Dir(f.Path), TempPrefix+filepath.Base(f.Path)+"."+randomSuffix())
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, fmt.Errorf("creating %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = out.Close()
			_ = os.Remove(tmp)
			tmp = ""
		}
	}()
	bw := bufio.NewWriterSize(out, 1<<20)
	cw := &CountingWriter{W: bw}
	if err = f.Write(cw); err != nil {
		return tmp, 0, fmt.Errorf("writing %s: %w", f.Path, err)
	}
	if err = bw.Flush(); err != nil {
		return tmp, 0, fmt.Errorf("writing %s: %w", f.Path, err)
	}
	if err = out.Sync(); err != nil {
		return tmp, 0, fmt.Errorf("syncing %s: %w", f.Path, err)
	}
	if err = out.Close(); err != nil {
		return tmp, 0, fmt.Errorf("closing %s: %w", f.Path, err)
	}
	return tmp, cw.N, nil
}

// mkdirAllNew is os.MkdirAll that returns the folders that did not exist
// when it looked, outermost first.
func mkdirAllNew(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return nil, fmt.Errorf("creating %s: %s is not a folder", dir, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return created, fmt.Errorf("creating %s: %w", missing[i], err)
			}
		}
		// Made here or concurrently: either way its parent is synced,
		// not trusting the other writer to have done it yet.
		created = append(created, missing[i])
	}
	return created, nil
}
