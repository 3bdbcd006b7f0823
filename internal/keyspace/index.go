package keyspace

// table is one shard's index: open addressing with linear probing over
// uint64 cells, each a 24-bit hash tag above a 40-bit slot ref (0 = empty).
// It holds no pointers, so the collector never looks inside it, and a view
// copies it with one memmove.
//
// A key's home cell is given by the top bits of its tag, so the table can
// grow and delete (by shifting later cells back, with no tombstones)
// without reading any key from the arena. The tag's other bits let a probe
// skip most non-matching cells without comparing keys.
type table struct {
	cells []uint64
	n     int
	shift uint8 // tag >> shift is a tag's home cell: tagBits - log2(len(cells))
}

const (
	tagBits  = 64 - refBits
	refMask  = 1<<refBits - 1
	minCells = 8
	// maxCellsLog bounds a shard's table at 2^24 cells (16M keys per
	// shard, 16G per database), the positions a tag can name.
	maxCellsLog = tagBits
)

// hashKey is FNV-1a, chosen because it is stable across processes (SCAN
// cursors, which are shard numbers, must survive restarts) and needs no
// allocation. The shard is the hash modulo NumShards; the tag mixes the
// whole hash (Fibonacci hashing) because within one shard the low bits of
// the hash are all the same.
func hashKey(key string) (shard int, tag uint64) {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % NumShards), (uint64(h) * 0x9E3779B97F4A7C15) >> refBits
}

func (t *table) mask() uint64 { return uint64(len(t.cells) - 1) }

// home is the first cell probed for tag.
func (t *table) home(tag uint64) uint64 { return tag >> t.shift }

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// find returns the cell holding key (and its ref), or ref 0.
func (t *table) find(a *arena, tag uint64, key string) (uint64, uint64) {
	if t.n == 0 {
		return 0, 0
	}
	m := t.mask()
	for i := t.home(tag); ; i = (i + 1) & m {
		c := t.cells[i]
		if c == 0 {
			return 0, 0
		}
		if c>>refBits == tag && string(a.slot(c&refMask).key()) == key {
			return i, c & refMask
		}
	}
}

// insert adds a key known to be absent.
func (t *table) insert(tag, ref uint64) {
	if (t.n+1)*4 > len(t.cells)*3 {
		t.grow()
	}
	m := t.mask()
	i := t.home(tag)
	for t.cells[i] != 0 {
		i = (i + 1) & m
	}
	t.cells[i] = tag<<refBits | ref
	t.n++
}

// set replaces the ref in cell i, found by find.
func (t *table) set(i, tag, ref uint64) { t.cells[i] = tag<<refBits | ref }

// remove empties cell i and moves later cells of the same probe run back,
// so that every key stays reachable from its home cell.
func (t *table) remove(i uint64) {
	m := t.mask()
	t.cells[i] = 0
	t.n--
	for j := (i + 1) & m; t.cells[j] != 0; j = (j + 1) & m {
		h := t.home(t.cells[j] >> refBits)
		// Cell j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		if (j-h)&m >= (j-i)&m {
			t.cells[i], t.cells[j] = t.cells[j], 0
			i = j
		}
	}
}

func (t *table) grow() {
	size := max(minCells, 2*len(t.cells))
	if log2(size) > maxCellsLog {
		panic("keyspace: shard index full")
	}
	old := t.cells
	t.cells = make([]uint64, size)
	t.shift = uint8(tagBits - log2(size))
	m := t.mask()
	for _, c := range old {
		if c == 0 {
			continue
		}
		i := t.home(c >> refBits)
		for t.cells[i] != 0 {
			i = (i + 1) & m
		}
		t.cells[i] = c
	}
}
