package keyspace

// Each calls fn for every key of the view that has not expired at now, in
// no particular order, until fn returns false. The key and the entry's
// Str alias the arena: they are valid until the view is released. Each
// may run concurrently with changes to the keyspace (see View).
func (v *View) Each(now int64, fn func(db int, key []byte, e *Entry) bool) {
	for db := range v.dbs {
		for _, cells := range v.dbs[db] {
			for _, c := range cells {
				if c == 0 {
					continue
				}
				sl := slotIn(v.pages, v.pageClass, c&refMask)
				if at := sl.expireAt(); at != 0 && at <= now {
					continue
				}
				e := entryOf(sl, v.objs)
				if !fn(db, sl.key(), e) {
					return
				}
			}
		}
	}
}
