package ratelimit

import (
	"testing"
	"time"

	"github.com/opencashier/cashier/internal/clock"
)

func TestLimiterAllowsBurstThenRefills(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(time.Minute, 3, fc)
	for i := range 3 {
		if !l.Allow("ip") {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	if l.Allow("ip") {
		t.Fatal("fourth attempt allowed")
	}
	if !l.Allow("other") {
		t.Fatal("another key was limited")
	}
	fc.Advance(time.Minute)
	if !l.Allow("ip") {
		t.Fatal("no attempt after a refill interval")
	}
	if l.Allow("ip") {
		t.Fatal("two attempts after one refill interval")
	}
	l.Reset("ip")
	if !l.Allow("ip") {
		t.Fatal("Reset did not clear the key")
	}
}
