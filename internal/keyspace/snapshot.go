package keyspace

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
)

// View is an immutable picture of the keyspace for a snapshot. Taking one
// copies the index tables (pointer-free, one memmove per shard), the page
// table and the table of hash and set objects; the slots themselves are
// shared with the keyspace. Encoding can then run on another goroutine,
// concurrently with further writes: stored slots are never changed, and
// slots freed after the view was taken are not reused until Release.
type View struct {
	dbs       [][NumShards][]uint64 // nil for an empty database
	pages     [][]byte
	pageClass []uint8
	objs      []object
	arena     *arena // keeps the mappings alive while the view is
	tok       *viewToken
	stamp     int64
	scripts   map[string][]byte
	libraries []*Library
	users     map[string][][]byte
}

// viewToken counts a view as live until it is released.
type viewToken struct {
	done  atomic.Bool
	arena *arena
}

func (t *viewToken) release() {
	if t.done.CompareAndSwap(false, true) {
		t.arena.views.Add(-1)
	}
}

// View captures the current contents. The caller must Release the view
// when done with it, or freed slots are not reused until the collector
// finds the view unreachable.
func (ks *Keyspace) View() *View {
	a := ks.arena
	a.views.Add(1)
	v := &View{
		dbs:       make([][NumShards][]uint64, len(ks.dbs)),
		pages:     slices.Clone(a.pages),
		pageClass: slices.Clone(a.pageClass),
		objs:      slices.Clone(ks.objs),
		arena:     a,
		tok:       &viewToken{arena: a},
		stamp:     ks.stamp,
		scripts:   ks.scriptsView(),
		libraries: ks.Libraries(),
		users:     ks.Users(),
	}
	for i, d := range ks.dbs {
		if d.keys == 0 {
			continue
		}
		for s := range d.shards {
			if t := &d.shards[s]; t.n > 0 {
				v.dbs[i][s] = slices.Clone(t.cells)
			}
		}
	}
	runtime.AddCleanup(v, (*viewToken).release, v.tok)
	return v
}

// Libraries are the function libraries as of the view, sorted by name.
func (v *View) Libraries() []*Library { return v.libraries }

// Release ends the view: slots freed since it was taken may be reused. The
// view must not be used afterwards. Release may be called more than once,
// from any goroutine.
func (v *View) Release() { v.tok.release() }

// Version 2 added script records, version 3 function library records,
// version 4 ACL user records; older snapshots are still read. A snapshot
// is written with the lowest version that holds what it has (no users: 3;
// no libraries either: 2), so that nodes of the releases before read it.
//
// A key record's first byte is its value type; memcached's replicated item
// bits (ItemBits: stale, win sent) ride in its high nibble, which is zero
// for an item without them. A snapshot with no such item is therefore
// byte for byte what the release before wrote, and one with them can only
// be written once every member applies the meta ops that set them (see
// cluster/versions.go); an older node refuses such a record as an unknown
// value type rather than misread it.
const recordBitsShift = 4
const (
	snapshotMagic   = "HCKS"
	snapshotVersion = 4
	recordUser      = 0xfc // name, rule count, rules
	recordLibrary   = 0xfd // name, code, function count, function names
	recordScript    = 0xfe // sha, body
	recordEnd       = 0xff
)

// ErrBadSnapshot means snapshot data is corrupt or of an unknown version.
var ErrBadSnapshot = errors.New("keyspace: bad snapshot")

// Encode writes the view: a header, then one record per key
// (db, type, key, expiry, flags, cas, payload), then one per cached script,
// then an end marker.
func (v *View) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	buf := []byte(snapshotMagic)
	version := byte(snapshotVersion)
	switch {
	case len(v.users) > 0:
	case len(v.libraries) > 0:
		version = 3
	default:
		version = 2
	}
	buf = append(buf, version)
	buf = binary.AppendUvarint(buf, uint64(len(v.dbs)))
	buf = binary.AppendVarint(buf, v.stamp)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	for db := range v.dbs {
		for _, cells := range v.dbs[db] {
			for _, c := range cells {
				if c == 0 {
					continue
				}
				sl := slotIn(v.pages, v.pageClass, c&refMask)
				typ := sl.typ()
				buf = buf[:0]
				buf = append(buf, byte(typ)|byte(sl.bits()&itemBitsMask)<<recordBitsShift)
				buf = binary.AppendUvarint(buf, uint64(db))
				buf = appendBytes(buf, sl.key())
				buf = binary.AppendVarint(buf, sl.expireAt())
				buf = binary.AppendUvarint(buf, uint64(sl.flags()))
				buf = binary.AppendUvarint(buf, sl.cas())
				switch typ {
				case TypeString:
					buf = appendBytes(buf, sl.value())
				case TypeHash:
					h := v.objs[sl.vlen()].hash
					buf = binary.AppendUvarint(buf, uint64(h.Len()))
					h.Each(func(f string, val []byte) bool {
						buf = appendBytes(buf, []byte(f))
						buf = appendBytes(buf, val)
						return true
					})
				case TypeSet:
					st := v.objs[sl.vlen()].set
					buf = binary.AppendUvarint(buf, uint64(st.Len()))
					for m := range st.members {
						buf = appendBytes(buf, []byte(m))
					}
				case TypeList:
					l := v.objs[sl.vlen()].list
					buf = binary.AppendUvarint(buf, uint64(l.Len()))
					for _, el := range l.Range(0, l.Len()) {
						buf = appendBytes(buf, el)
					}
				case TypeZSet:
					z := v.objs[sl.vlen()].zset
					buf = binary.AppendUvarint(buf, uint64(z.Len()))
					for _, el := range z.Range(0, z.Len()) {
						buf = appendBytes(buf, []byte(el.Member))
						buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(el.Score))
					}
				case TypeStream:
					st := v.objs[sl.vlen()].stream
					buf = appendStreamID(buf, st.Last)
					buf = appendStreamID(buf, st.MaxDeleted)
					buf = appendStreamID(buf, st.First)
					buf = binary.AppendUvarint(buf, st.Added)
					buf = binary.AppendUvarint(buf, uint64(st.Len()))
					for _, en := range st.Entries(0, st.Len()) {
						buf = appendStreamID(buf, en.ID)
						buf = binary.AppendUvarint(buf, uint64(len(en.Fields)))
						for _, f := range en.Fields {
							buf = appendBytes(buf, f)
						}
					}
				}
				if _, err := bw.Write(buf); err != nil {
					return err
				}
			}
		}
	}
	for sha, body := range v.scripts {
		buf = append(buf[:0], recordScript)
		buf = appendBytes(buf, []byte(sha))
		buf = appendBytes(buf, body)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	for _, l := range v.libraries {
		buf = append(buf[:0], recordLibrary)
		buf = appendBytes(buf, []byte(l.Name))
		buf = appendBytes(buf, l.Code)
		buf = binary.AppendUvarint(buf, uint64(len(l.Functions)))
		for _, fn := range l.Functions {
			buf = appendBytes(buf, []byte(fn))
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(v.users)) {
		rules := v.users[name]
		buf = append(buf[:0], recordUser)
		buf = appendBytes(buf, []byte(name))
		buf = binary.AppendUvarint(buf, uint64(len(rules)))
		for _, r := range rules {
			buf = appendBytes(buf, r)
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	if err := bw.WriteByte(recordEnd); err != nil {
		return err
	}
	return bw.Flush()
}

func appendStreamID(buf []byte, id StreamID) []byte {
	buf = binary.AppendUvarint(buf, id.Ms)
	return binary.AppendUvarint(buf, id.Seq)
}

func (d *decoder) streamID() StreamID { return StreamID{d.uvarint(), d.uvarint()} }

// stream reads a stream record's payload (see Encode), refusing entries
// out of order, an odd field count or a last ID below the last entry's.
func (d *decoder) stream() *Stream {
	last, maxDel, first, added := d.streamID(), d.streamID(), d.streamID(), d.uvarint()
	cnt := d.uvarint()
	var entries []StreamEntry
	for i := uint64(0); i < cnt && d.err == nil; i++ {
		e := StreamEntry{ID: d.streamID()}
		nf := d.uvarint()
		if nf%2 != 0 || nf == 0 {
			d.err = fmt.Errorf("stream entry of %d fields and values", nf)
		}
		for j := uint64(0); j < nf && d.err == nil; j++ {
			e.Fields = append(e.Fields, d.bytes())
		}
		if len(entries) > 0 && e.ID.Compare(entries[len(entries)-1].ID) <= 0 {
			d.err = errors.New("stream entries out of order")
		}
		entries = append(entries, e)
	}
	if d.err == nil && len(entries) > 0 && entries[len(entries)-1].ID.Compare(last) > 0 {
		d.err = errors.New("stream entry after its last ID")
	}
	return NewStream(entries, last, maxDel, first, added)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// Decode reads a snapshot written by Encode into a new keyspace. maxDBs
// bounds the database count it accepts.
func Decode(r io.Reader, maxDBs int) (*Keyspace, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	hdr := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if string(hdr[:4]) != snapshotMagic || hdr[4] < 1 || hdr[4] > snapshotVersion {
		return nil, fmt.Errorf("%w: header %q", ErrBadSnapshot, hdr)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n == 0 || n > uint64(maxDBs) {
		return nil, fmt.Errorf("%w: %d databases (this node has %d)", ErrBadSnapshot, n, maxDBs)
	}
	ks := New(maxDBs)
	if ks.stamp, err = binary.ReadVarint(br); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	d := decoder{r: br}
	for {
		t, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		if t == recordEnd {
			return ks, nil
		}
		if t == recordScript {
			sha, body := string(d.bytes()), d.bytes()
			if d.err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
			}
			ks.StoreScript(sha, body)
			continue
		}
		if t == recordUser {
			name := string(d.bytes())
			n := d.uvarint()
			var rules [][]byte
			for i := uint64(0); i < n && d.err == nil; i++ {
				rules = append(rules, d.bytes())
			}
			if d.err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
			}
			if ks.users == nil {
				ks.users = map[string][][]byte{}
			}
			ks.users[name] = rules
			continue
		}
		if t == recordLibrary {
			l := &Library{Name: string(d.bytes()), Code: d.bytes()}
			n := d.uvarint()
			for i := uint64(0); i < n && d.err == nil; i++ {
				l.Functions = append(l.Functions, string(d.bytes()))
			}
			if d.err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
			}
			ks.StoreLibrary(l)
			continue
		}
		db := d.uvarint()
		key := string(d.bytes())
		bits := ItemBits(t >> recordBitsShift)
		if bits&^itemBitsMask != 0 {
			return nil, fmt.Errorf("%w: record type %#x", ErrBadSnapshot, t)
		}
		t &= 1<<recordBitsShift - 1
		e := &Entry{Type: Type(t), ExpireAt: d.varint(), Flags: uint32(d.uvarint()), CAS: d.uvarint(), Bits: bits}
		switch e.Type {
		case TypeString:
			e.Str = d.bytes()
		case TypeHash:
			cnt := d.uvarint()
			var pairs [][]byte
			for i := uint64(0); i < cnt && d.err == nil; i++ {
				pairs = append(pairs, d.bytes(), d.bytes())
			}
			e.Hash, _ = (*Hash)(nil).With(pairs)
		case TypeSet:
			cnt := d.uvarint()
			var members [][]byte
			for i := uint64(0); i < cnt && d.err == nil; i++ {
				members = append(members, d.bytes())
			}
			e.Set, _ = (*Set)(nil).With(members)
		case TypeList:
			cnt := d.uvarint()
			var elems [][]byte
			for i := uint64(0); i < cnt && d.err == nil; i++ {
				elems = append(elems, d.bytes())
			}
			e.List = NewList(elems)
		case TypeZSet:
			cnt := d.uvarint()
			var elems []ZElem
			for i := uint64(0); i < cnt && d.err == nil; i++ {
				m := string(d.bytes())
				score := math.Float64frombits(d.uint64())
				if math.IsNaN(score) {
					d.err = errors.New("NaN score")
				}
				elems = append(elems, ZElem{m, score})
			}
			e.ZSet = NewZSet(elems)
		case TypeStream:
			e.Stream = d.stream()
		default:
			return nil, fmt.Errorf("%w: value type %d", ErrBadSnapshot, t)
		}
		if d.err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, d.err)
		}
		if db >= n {
			return nil, fmt.Errorf("%w: database %d", ErrBadSnapshot, db)
		}
		ks.Put(int(db), key, e, 0)
	}
}

type decoder struct {
	r   *bufio.Reader
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	d.err = err
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	d.err = err
	return v
}

// maxSnapshotValue bounds a single length prefix so that a corrupt snapshot
// cannot make the decoder allocate without limit.
const maxSnapshotValue = 1 << 30

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > maxSnapshotValue {
		d.err = fmt.Errorf("length %d", n)
		return nil
	}
	b := make([]byte, n)
	_, d.err = io.ReadFull(d.r, b)
	return b
}

// uint64 reads 8 bytes, little-endian (a zset score's bits).
func (d *decoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	var b [8]byte
	_, d.err = io.ReadFull(d.r, b[:])
	return binary.LittleEndian.Uint64(b[:])
}
