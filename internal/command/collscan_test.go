package command

import (
	"fmt"
	"testing"
)

// A member present for a whole HSCAN or SSCAN is returned at least once,
// whatever is added and removed between the calls.
func TestScanMembersReturnsEveryStayingMember(t *testing.T) {
	var members []string
	for i := 0; i < 2000; i++ {
		members = append(members, fmt.Sprint("m", i))
	}
	seen := map[string]int{}
	cursor, calls := uint64(0), 0
	for {
		var got []string
		got, cursor = scanMembers(members, cursor, 25)
		calls++
		for _, m := range got {
			seen[m]++
		}
		if cursor == 0 {
			break
		}
		// Churn: drop a few of the earliest members, add new ones.
		members = append(members[3:], fmt.Sprint("new", calls, "a"), fmt.Sprint("new", calls, "b"))
	}
	for i := 3 * calls; i < 2000; i++ {
		if m := fmt.Sprint("m", i); seen[m] == 0 {
			t.Fatalf("%s, present throughout, was never returned", m)
		}
	}
	if calls < 2000/25/2 || calls > 2000/25*2 {
		t.Errorf("%d calls for 2000 members with COUNT 25", calls)
	}
}
