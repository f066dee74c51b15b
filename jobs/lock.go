package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// errLocked is returned by tryLock when another process holds the lock.
var errLocked = errors.New("locked by another process")

// LockPath is the lock file of a job under the warehouse root.
func LockPath(root, job string) string {
	return filepath.Join(root, Dir, job+".lock")
}

// tryLock takes the job's lock file without blocking (flock LOCK_EX|LOCK_NB).
// The lock is released when unlock closes the file, or when the process
// dies, so a crashed run never leaves a stale lock behind.
func tryLock(root, job string) (unlock func() error, err error) {
	path := LockPath(root, job)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("locking job %s: %w", job, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking job %s: %w", job, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", errLocked, path)
		}
		return nil, fmt.Errorf("locking job %s (%s): %w", job, path, err)
	}
	return f.Close, nil
}
