//go:build !linux && !darwin

package keyspace

// mapChunk falls back to the Go heap where mmap is unavailable: the memory
// is pointer-free, so the collector does not scan it, though it does count
// toward the heap goal (see mmap_unix.go).
func mapChunk(n int) []byte { return make([]byte, n) }

func unmapChunk([]byte) {}
