package testbin

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer safe to read while another goroutine
// writes to it (a logger, a progress printer).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
