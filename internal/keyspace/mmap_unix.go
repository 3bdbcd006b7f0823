//go:build linux || darwin

package keyspace

import "syscall"

// mapChunk obtains n bytes of anonymous private memory from the kernel.
//
// Why mmap and not a large pointer-free []byte: both keep session data out
// of the collector's mark work, but memory on the Go heap also counts
// toward the heap goal, and with GOGC=100 the runtime lets the heap grow to
// twice the live heap before it collects — a node holding 1 GB of sessions
// would run with up to 1 GB of garbage on top. Mapped memory is invisible
// to the pacer, so the Go heap (buffers, requests) is collected at its own
// small size while the sessions stay put. MAP_NORESERVE: untouched pages
// cost nothing, so chunks can be generous.
func mapChunk(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
	if err != nil {
		// Out of address space or mappings: as fatal as the runtime's own
		// out-of-memory, which a failed make would be.
		panic("keyspace: mmap: " + err.Error())
	}
	return b
}

func unmapChunk(b []byte) { _ = syscall.Munmap(b) }
