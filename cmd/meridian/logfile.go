package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// logFile is Consul's log_file: the agent's logs also go to a file, rotated
// when it holds maxBytes (0: no limit) or is older than every, keeping maxFiles
// rotated files (0: all, -1: none). A path ending in "/" (or naming a
// directory) gets meridian.log in it. A rotated file is renamed
// <name>-<unix nanoseconds><ext> next to it.
type logFile struct {
	path     string
	maxBytes int64
	every    time.Duration
	maxFiles int

	mu     sync.Mutex
	f      *os.File
	size   int64
	opened time.Time
}

func openLogFile(path string, maxBytes int, every time.Duration, maxFiles int) (*logFile, error) {
	if st, err := os.Stat(path); strings.HasSuffix(path, string(os.PathSeparator)) || (err == nil && st.IsDir()) {
		path = filepath.Join(path, "meridian.log")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log_file: %w", err)
	}
	l := &logFile{path: path, maxBytes: int64(maxBytes), every: every, maxFiles: maxFiles}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("log_file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("log_file: %w", err)
	}
	l.f, l.size, l.opened = f, st.Size(), time.Now()
	return nil
}

// Write appends p, rotating first when p would pass the size limit or the
// file is older than the rotation period. A line is never split.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	full := l.maxBytes > 0 && l.size > 0 && l.size+int64(len(p)) > l.maxBytes
	if full || (l.every > 0 && time.Since(l.opened) >= l.every) {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *logFile) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("log_file: %w", err)
	}
	l.f = nil
	ext := filepath.Ext(l.path)
	base := strings.TrimSuffix(l.path, ext)
	if err := os.Rename(l.path, fmt.Sprintf("%s-%d%s", base, time.Now().UnixNano(), ext)); err != nil {
		return fmt.Errorf("log_file: rotate: %w", err)
	}
	l.prune(base, ext)
	return l.open()
}

// prune removes the oldest rotated files beyond maxFiles.
func (l *logFile) prune(base, ext string) {
	if l.maxFiles == 0 {
		return
	}
	old, _ := filepath.Glob(base + "-*" + ext)
	sort.Strings(old) // same digit count for centuries: by name is by age
	keep := max(l.maxFiles, 0)
	for len(old) > keep {
		_ = os.Remove(old[0])
		old = old[1:]
	}
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// writePidFile writes this process's ID to path; the returned func removes
// the file.
func writePidFile(path string) (func(), error) {
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("pid_file: %w", err)
	}
	return func() { _ = os.Remove(path) }, nil
}
