package command

// Match reports whether s matches the glob pattern as redis's stringmatchlen
// does: * any run, ? one byte, [abc] [^abc] [a-z] classes, \ escapes.
func Match(pattern, s []byte) bool {
	return match(pattern, s, 0)
}

// maxNesting bounds recursion on patterns with many stars, so a hostile
// pattern costs time proportional to its length, not stack.
const maxNesting = 1000

func match(p, s []byte, depth int) bool {
	if depth > maxNesting {
		return false
	}
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if match(p[1:], s[i:], depth+1) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			s = s[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			ok := false
			for len(p) > 0 && p[0] != ']' {
				switch {
				case p[0] == '\\' && len(p) >= 2:
					p = p[1:]
					if p[0] == s[0] {
						ok = true
					}
				case len(p) >= 3 && p[1] == '-':
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					if s[0] >= lo && s[0] <= hi {
						ok = true
					}
					p = p[2:]
				default:
					if p[0] == s[0] {
						ok = true
					}
				}
				p = p[1:]
			}
			if len(p) == 0 {
				// Unterminated class: redis treats the end of the pattern
				// as the end of the class.
				p = []byte{']'}
			}
			if ok == not {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
	}
	return len(s) == 0
}
