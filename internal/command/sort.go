package command

import (
	"bytes"
	"cmp"
	"math"
	"slices"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// SORT and SORT_RO, as redis 7.0's sortCommandGeneric: the elements of a
// list, set or sorted set, ordered by their own value or by the values of
// other keys named by a pattern (BY), numerically or by bytes (ALPHA),
// limited, each replaced by the values of GET patterns, replied or stored
// as a list (STORE, a write).
//
// The order is total wherever redis's is: numeric ties are broken by the
// element's bytes, as redis does. Ties redis leaves to its sort (ALPHA BY
// with equal values or missing keys) keep the order the elements were
// loaded in (a stable sort, as glibc's qsort is for such sizes): a list's
// order, a set's Members order, a sorted set's score order. STORE thus
// computes the same list on every node.
var sortOps = []opRow{
	{op: OpSort, name: "sort", args: argShape{4, 1}, exec: execSort},
	{op: OpSortStore, name: "sortstore", flags: opWrite | opDenyOOM, args: argShape{4, 1}, exec: execSort},
}

// ErrSortScore: a numeric sort met a value that is no number.
var ErrSortScore = ReplyError("ERR One or more scores can't be converted into double")

type sortItem struct {
	elem  []byte
	score float64
	by    []byte // ALPHA BY's value; nil when its key is missing
}

func execSort(v env, c *Cmd) Result {
	src, by := string(c.Args[0]), c.Args[1]
	start, _ := ParseInt(c.Args[2])
	count, _ := ParseInt(c.Args[3])
	gets := c.Args[4:]
	desc, alpha, hasBy := c.Has(FlagRev), c.Has(FlagByLex), c.Has(FlagByScore)
	store := c.Op == OpSortStore
	dontsort := hasBy && bytes.IndexByte(by, '*') < 0

	var elems [][]byte
	var isSet bool
	if e := v.ks.Get(v.db, src, v.h.Now); e != nil {
		switch e.Type {
		case keyspace.TypeList:
			elems = slices.Clone(e.List.Range(0, e.List.Len())) // Range aliases the list
		case keyspace.TypeSet:
			isSet = true
			for _, m := range e.Set.Members() {
				elems = append(elems, []byte(m))
			}
		case keyspace.TypeZSet:
			for _, el := range e.ZSet.Range(0, e.ZSet.Len()) {
				elems = append(elems, []byte(el.Member))
			}
		default:
			return resErr(ErrWrongType)
		}
	}
	// A set stored without sorting is sorted by bytes, as redis does
	// (its order would be its hash table's).
	if dontsort && isSet && store {
		dontsort, alpha, hasBy = false, true, false
	}
	n := int64(len(elems))
	start = min(max(start, 0), n)
	count = min(max(count, -1), n)
	end := start + count - 1
	if count < 0 {
		end = n - 1
	}
	if start >= n {
		start, end = n-1, n-2
	}
	end = min(end, n-1)

	if dontsort {
		if desc {
			slices.Reverse(elems)
		}
	} else {
		items := make([]sortItem, len(elems))
		bad := false
		for i, el := range elems {
			items[i].elem = el
			val := el
			if hasBy {
				if val = sortLookup(v, by, el); val == nil {
					continue
				}
			}
			if alpha {
				if hasBy {
					items[i].by = val
				}
				continue
			}
			f, ok := sortScore(val)
			if !ok {
				bad = true
			}
			items[i].score = f
		}
		if bad {
			return resErr(ErrSortScore)
		}
		slices.SortStableFunc(items, func(a, b sortItem) int {
			var r int
			switch {
			case !alpha:
				if r = cmp.Compare(a.score, b.score); r == 0 {
					r = bytes.Compare(a.elem, b.elem)
				}
			case hasBy:
				switch {
				case a.by == nil || b.by == nil:
					r = cmp.Compare(boolInt(a.by != nil), boolInt(b.by != nil))
				default:
					r = bytes.Compare(a.by, b.by)
				}
			default:
				r = bytes.Compare(a.elem, b.elem)
			}
			if desc {
				return -r
			}
			return r
		})
		for i := range items {
			elems[i] = items[i].elem
		}
	}

	var out [][]byte
	var nils []bool // the reply's missing GET values
	for j := start; j <= end; j++ {
		if len(gets) == 0 {
			out = append(out, bytes.Clone(elems[j]))
			nils = append(nils, false)
			continue
		}
		for _, g := range gets {
			val := sortLookup(v, g, elems[j])
			nils = append(nils, val == nil)
			out = append(out, bytes.Clone(val))
		}
	}
	if !store {
		res := make([]Result, len(out))
		for i, b := range out {
			if nils[i] {
				res[i] = resNil
			} else {
				res[i] = resBulk(b)
			}
		}
		return Result{Kind: KindArray, Array: res}
	}
	for i := range out {
		if out[i] == nil {
			out[i] = []byte{}
		}
	}
	if len(out) > 0 {
		v.ks.Put(v.db, v.key, &keyspace.Entry{Type: keyspace.TypeList, List: keyspace.NewList(out)}, v.h.Now)
		v.ks.Notify(v.db, keyspace.EventList, "sortstore", v.key)
	} else if v.ks.Get(v.db, v.key, v.h.Now) != nil {
		v.ks.Delete(v.db, v.key)
		v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
	}
	return resInt(int64(len(out)))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sortScore parses a value to sort by as redis does: strtod, which skips
// leading space and reads up to a NUL; an empty value is 0; NaN, trailing
// bytes and overflow or underflow are errors.
func sortScore(b []byte) (float64, bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return 0, true
	}
	t := bytes.TrimLeft(b, " \t\n\v\f\r")
	if len(t) == 0 {
		return 0, false
	}
	f, ok := strtod(string(t))
	return f, ok && !math.IsNaN(f)
}

// sortLookup is redis's lookupKeyByPattern: "#" is the element itself;
// otherwise the first '*' of pattern is replaced by the element to name a
// key, whose string value is the result, or, when "->field" follows the
// '*', that field of the key's hash. nil: no '*', no such key, field or
// type.
func sortLookup(v env, pattern, subst []byte) []byte {
	if string(pattern) == "#" {
		return subst
	}
	p := bytes.IndexByte(pattern, '*')
	if p < 0 {
		return nil
	}
	var field []byte
	post := pattern[p+1:]
	if f := bytes.Index(post, []byte("->")); f >= 0 && f+2 < len(post) {
		field = post[f+2:]
		post = post[:f]
	}
	key := make([]byte, 0, len(pattern)+len(subst))
	key = append(append(append(key, pattern[:p]...), subst...), post...)
	e := v.ks.Get(v.db, string(key), v.h.Now)
	switch {
	case e == nil:
		return nil
	case field != nil:
		if e.Type != keyspace.TypeHash {
			return nil
		}
		val, ok := e.Hash.Get(string(field))
		if !ok {
			return nil
		}
		return val
	case e.Type != keyspace.TypeString:
		return nil
	}
	return e.Str
}
