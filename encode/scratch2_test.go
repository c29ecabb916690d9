package encode

import "testing"

func BenchmarkPhase(b *testing.B) {
	r := newRand(b, 100)
	ts, vs := tsEvent(r, 1024), vsLognormal(r, 1024)
	ts2, vs2 := tsRegular(1024, 15*sec), vsWalk(r, 1024)
	var tp timePlan
	var vp valuePlan
	b.Run("timeplan-event", func(b *testing.B) { for b.Loop() { tp.plan(ts, -1) } })
	b.Run("timeplan-regular", func(b *testing.B) { for b.Loop() { tp.plan(ts2, -1) } })
	b.Run("aggregate", func(b *testing.B) { for b.Loop() { vp.aggregate(vs) } })
	b.Run("planSplit", func(b *testing.B) { for b.Loop() { planSplit(vs) } })
	b.Run("planInt-walk", func(b *testing.B) { for b.Loop() { planInt(vs2) } })
	b.Run("planInt-float", func(b *testing.B) { for b.Loop() { planInt(vs) } })
	b.Run("xorSize", func(b *testing.B) { for b.Loop() { xorSize(vs, 1<<30) } })
	b.Run("valueplan-event", func(b *testing.B) { for b.Loop() { vp.plan(vs, -1) } })
	b.Run("valueplan-walk", func(b *testing.B) { for b.Loop() { vp.plan(vs2, -1) } })
	tp.plan(ts, -1)
	dst := make([]byte, 0, 1<<16)
	b.Run("appendTime-event", func(b *testing.B) { for b.Loop() { dst = tp.append(dst[:0], ts) } })
	vp.plan(vs, -1)
	b.Run("appendSplit", func(b *testing.B) { for b.Loop() { dst = vp.append(dst[:0], vs) } })
	vp.plan(vs2, -1)
	b.Run("appendRadix", func(b *testing.B) { for b.Loop() { dst = vp.append(dst[:0], vs2) } })
}
