package gateway

import (
	"testing"
	"time"
)

// TestSlotRankOrder: the order in which takeFree and pickLending prefer a
// lending pool's workers, one rule at a time (slotRank.before).
func TestSlotRankOrder(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		why    string
		better slotRank
		worse  slotRank
	}{
		{"a worker not busy before a busy one, whatever it holds",
			slotRank{held: 20}, slotRank{busy: true, age: ms, held: 0}},
		{"of two not busy, the one holding fewer connections",
			slotRank{held: 3}, slotRank{held: 4}},
		{"of two busy, one whose request has not run 20 ms, though more wait there",
			slotRank{busy: true, age: 5 * ms, parked: 6, held: 16}, slotRank{busy: true, long: true, age: 30 * ms}},
		{"then the fewest parked requests and held connections together",
			slotRank{busy: true, age: 5 * ms, parked: 2, held: 14}, slotRank{busy: true, age: ms, parked: 0, held: 17}},
		{"then the youngest request",
			slotRank{busy: true, age: ms, parked: 1, held: 15}, slotRank{busy: true, age: 2 * ms, parked: 2, held: 14}},
	} {
		if !tc.better.before(tc.worse) || tc.worse.before(tc.better) {
			t.Errorf("%s: %+v should go before %+v", tc.why, tc.better, tc.worse)
		}
	}
	same := slotRank{busy: true, age: ms, parked: 1, held: 15}
	if same.before(same) {
		t.Errorf("a rank goes before itself: %+v", same)
	}
}
