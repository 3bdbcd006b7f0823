package keyspace

import (
	"encoding/binary"
	"runtime"
	"sort"
	"sync/atomic"
	"unsafe"
)

// The arena holds every key's slot: a fixed header, the key's bytes and, for
// a string of up to maxSlot bytes in all, the value's bytes. Slots come from
// size classes whose pages are mapped outside the Go heap (see
// mmap_unix.go), so to the garbage collector a million sessions are a
// handful of 64 MiB mappings it never scans instead of a million objects
// to mark.
//
// A slot is named by a ref: its page number and its offset in the page in
// 8-byte units, packed into 40 bits so that the index can keep a ref and a
// hash tag in one uint64. Page 0 is never used, so ref 0 means "none".
//
// Slot layout (little endian; slots and pages are 8-byte aligned):
//
//	 0 expireAt int64   Unix ms, 0 = no expiry
//	 8 cas      uint64
//	16 access   int64   LRU clock, read and written atomically by readers
//	24 flags    uint32  memcached client flags
//	28 vlen     uint32  value length, or the object handle of a hash or set
//	32 klen     uint32
//	36 type     uint8
//	37 bits     uint8   memcached's replicated item bits (ItemBits)
//	40 key, then value
const (
	hdrSize   = 40
	pageShift = 20 // 1 MiB pages: at least 8 slots of the largest class
	pageSize  = 1 << pageShift
	offBits   = pageShift - 3
	refBits   = 40
	maxPages  = 1 << (refBits - offBits)

	// maxSlot is the largest slot carved from pages. A larger slot (a
	// value over about 128 KB, rare for sessions) gets a page of its own,
	// a pointer-free []byte on the Go heap: mapping each one would spend
	// the kernel's limited count of mappings, and the collector does not
	// scan pointer-free memory either.
	maxSlot = 128 << 10

	hugeClass = 0xff // pageClass of a page that is one huge slot
)

// classSizes are the slot sizes: 16-byte steps up to 512 bytes, then steps
// of about 1/32 (32 bytes around 1 KB), so a slot wastes at most about 3 %
// — a 1 KB session with a 49-byte PHP session key needs 1,113 bytes and
// gets 1,128. There are 218 classes; a class costs address space for one
// page but memory only for what it touches.
var classSizes = func() []uint32 {
	var c []uint32
	for s := uint32(64); s < maxSlot; {
		c = append(c, s)
		s += max(16, (s/32)&^7)
	}
	return append(c, maxSlot)
}()

// classOf is the smallest class that holds n bytes; n <= maxSlot.
func classOf(n int) int {
	return sort.Search(len(classSizes), func(i int) bool { return int(classSizes[i]) >= n })
}

// sizeClass is one class's allocation state. Free slots are linked through
// their first 8 bytes, so the free list costs no memory of its own and has
// no pointers.
type sizeClass struct {
	free uint64 // first free slot's ref; 0 = none
	page uint32 // page being carved; 0 = none
	next uint32 // offset of its first slot not yet handed out
}

// mappings are the memory the arena obtained from the system. They are
// kept apart from the arena so that a cleanup can release them once the
// arena (and every view of it) is unreachable.
type mappings struct {
	chunks [][]byte
}

// arena allocates and frees slots. It is not synchronized: the keyspace's
// owner serializes changes. The one concurrent user is a View's encoder,
// which reads slots that were live when the view was taken; while any view
// is live, freed slots go to deferred instead of their free lists, so no
// slot a view may read is written until every view is released.
type arena struct {
	m         *mappings
	pages     [][]byte // page number → memory; pages[0] is unused
	pageClass []uint8
	freePages []uint32 // page numbers of released huge slots
	classes   []sizeClass
	chunk     []byte // mapped memory not yet cut into pages
	deferred  []uint64
	views     atomic.Int32 // live views
	mapped    int64        // bytes mapped from the system
}

func newArena() *arena {
	a := &arena{
		m:         &mappings{},
		pages:     make([][]byte, 1),
		pageClass: make([]uint8, 1),
		classes:   make([]sizeClass, len(classSizes)),
	}
	runtime.AddCleanup(a, (*mappings).release, a.m)
	return a
}

func (m *mappings) release() {
	for _, c := range m.chunks {
		unmapChunk(c)
	}
	m.chunks = nil
}

// chunkPages is how many pages one mapping holds at most: mapping in large
// chunks keeps the process far below the kernel's limit on mappings, and
// costs no memory until a page is touched. The first chunks are smaller
// (4, 8, … pages) so that a small keyspace, or one of many in a test, takes
// little address space.
const chunkPages = 64

func makeRef(page uint32, off uint32) uint64 { return uint64(page)<<offBits | uint64(off>>3) }

func refPage(ref uint64) uint32 { return uint32(ref >> offBits) }
func refOff(ref uint64) uint32  { return uint32(ref&(1<<offBits-1)) << 3 }

// slotIn returns the slot named by ref within pages.
func slotIn(pages [][]byte, pageClass []uint8, ref uint64) slot {
	p := refPage(ref)
	if pageClass[p] == hugeClass {
		return slot(pages[p])
	}
	off := refOff(ref)
	return slot(pages[p][off : off+classSizes[pageClass[p]]])
}

func (a *arena) slot(ref uint64) slot { return slotIn(a.pages, a.pageClass, ref) }

// alloc returns a slot of at least n bytes. Its contents are undefined.
func (a *arena) alloc(n int) (uint64, slot) {
	if len(a.deferred) > 0 && a.views.Load() == 0 {
		a.drain()
	}
	if n > maxSlot {
		p := a.newPage(hugeClass, make([]byte, n))
		return makeRef(p, 0), slot(a.pages[p])
	}
	ci := classOf(n)
	c := &a.classes[ci]
	size := classSizes[ci]
	if ref := c.free; ref != 0 {
		s := a.slot(ref)
		c.free = binary.LittleEndian.Uint64(s)
		return ref, s
	}
	if c.page == 0 || c.next+size > pageSize {
		c.page, c.next = a.newPage(uint8(ci), a.mapPage()), 0
	}
	ref := makeRef(c.page, c.next)
	c.next += size
	return ref, a.slot(ref)
}

func (a *arena) newPage(class uint8, mem []byte) uint32 {
	if class == hugeClass && len(a.freePages) > 0 {
		p := a.freePages[len(a.freePages)-1]
		a.freePages = a.freePages[:len(a.freePages)-1]
		a.pages[p], a.pageClass[p] = mem, class
		return p
	}
	if len(a.pages) >= maxPages {
		panic("keyspace: arena page numbers exhausted")
	}
	a.pages = append(a.pages, mem)
	a.pageClass = append(a.pageClass, class)
	return uint32(len(a.pages) - 1)
}

// mapPage cuts the next page from the current chunk, mapping a new chunk
// when it is used up.
func (a *arena) mapPage() []byte {
	if len(a.chunk) < pageSize {
		c := mapChunk(min(chunkPages, 4<<min(len(a.m.chunks), 4)) * pageSize)
		a.m.chunks = append(a.m.chunks, c)
		a.mapped += int64(len(c))
		a.chunk = c
	}
	p := a.chunk[:pageSize:pageSize]
	a.chunk = a.chunk[pageSize:]
	return p
}

// free returns a slot. While a view is live the slot is only queued: the
// view may still read it.
func (a *arena) free(ref uint64) {
	if a.views.Load() > 0 {
		a.deferred = append(a.deferred, ref)
		return
	}
	if len(a.deferred) > 0 {
		a.drain()
	}
	a.release(ref)
}

func (a *arena) drain() {
	for _, r := range a.deferred {
		a.release(r)
	}
	a.deferred = a.deferred[:0]
}

func (a *arena) release(ref uint64) {
	p := refPage(ref)
	ci := a.pageClass[p]
	if ci == hugeClass {
		// A view holds its own copy of the page table, so the memory
		// stays reachable for it; the page number may be reused at once.
		a.pages[p] = nil
		a.freePages = append(a.freePages, p)
		return
	}
	c := &a.classes[ci]
	binary.LittleEndian.PutUint64(a.slot(ref), c.free)
	c.free = ref
}

// reset unmaps every page and starts over, when no view is live. The
// caller guarantees that no slot is in use: nothing may alias the memory.
func (a *arena) reset() bool {
	if a.views.Load() > 0 {
		return false
	}
	a.m.release()
	clear(a.pages)
	a.pages, a.pageClass = a.pages[:1], a.pageClass[:1]
	clear(a.classes)
	a.freePages, a.deferred = a.freePages[:0], a.deferred[:0]
	a.chunk, a.mapped = nil, 0
	return true
}

// slot is one key's memory in the arena; see the layout above.
type slot []byte

func (s slot) expireAt() int64 { return int64(binary.LittleEndian.Uint64(s[0:])) }
func (s slot) cas() uint64     { return binary.LittleEndian.Uint64(s[8:]) }
func (s slot) flags() uint32   { return binary.LittleEndian.Uint32(s[24:]) }
func (s slot) vlen() uint32    { return binary.LittleEndian.Uint32(s[28:]) }
func (s slot) klen() uint32    { return binary.LittleEndian.Uint32(s[32:]) }
func (s slot) typ() Type       { return Type(s[36]) }
func (s slot) bits() ItemBits  { return ItemBits(s[37]) }
func (s slot) key() []byte     { return s[hdrSize : hdrSize+s.klen()] }

// value is a string slot's value.
func (s slot) value() []byte {
	k := hdrSize + s.klen()
	return s[k : k+s.vlen() : k+s.vlen()]
}

// clock is the slot's LRU access clock, which readers update concurrently
// (atomically) under the owner's read lock. The header is 8-byte aligned.
func (s slot) clock() *int64 { return (*int64)(unsafe.Pointer(&s[16])) }

func (s slot) expired(now int64) bool {
	at := s.expireAt()
	return at != 0 && at <= now
}

// write fills the header and the key; the caller copies the value.
func (s slot) write(e *Entry, key string, vlen uint32, access int64) {
	binary.LittleEndian.PutUint64(s[0:], uint64(e.ExpireAt))
	binary.LittleEndian.PutUint64(s[8:], e.CAS)
	binary.LittleEndian.PutUint64(s[16:], uint64(access))
	binary.LittleEndian.PutUint32(s[24:], e.Flags)
	binary.LittleEndian.PutUint32(s[28:], vlen)
	binary.LittleEndian.PutUint32(s[32:], uint32(len(key)))
	s[36] = byte(e.Type)
	s[37] = byte(e.Bits)
	copy(s[hdrSize:], key)
}
