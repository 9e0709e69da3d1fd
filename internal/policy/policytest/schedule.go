package policytest

import (
	"fmt"
	"math/rand"
	"slices"

	"github.com/realguardio/realguardio/internal/policy"
)

// Zones are the time zones generated schedules use, chosen for their edges:
// no DST (UTC, Asia/Tokyo), northern and southern hemisphere DST
// (Europe/Berlin, America/New_York, Australia/Sydney), a half-hour offset
// (Asia/Kolkata), a half-hour DST change (Australia/Lord_Howe) and a
// 45-minute offset with DST (Pacific/Chatham).
var Zones = []string{
	"UTC",
	"Europe/Berlin",
	"America/New_York",
	"Australia/Sydney",
	"Asia/Kolkata",
	"Asia/Tokyo",
	"Australia/Lord_Howe",
	"Pacific/Chatham",
}

// clockChoices are shift boundaries: DST-relevant hours (01:00-03:00 local
// is where most changes happen), midnight, office hours and random
// quarter-hours are all likely.
var clockChoices = []string{"00:00", "01:00", "01:30", "02:00", "02:30", "03:00", "06:00", "09:00", "17:00", "22:00", "23:59"}

func randomClock(rng *rand.Rand) string {
	if rng.Intn(2) == 0 {
		return clockChoices[rng.Intn(len(clockChoices))]
	}
	return fmt.Sprintf("%02d:%02d", rng.Intn(24), 15*rng.Intn(4))
}

// RandomSchedule returns a valid schedule in a zone from Zones with one to
// three shifts, among them night shifts (end before start) and 24-hour
// shifts (end equal to start).
func RandomSchedule(rng *rand.Rand) policy.Schedule {
	s := policy.Schedule{TimeZone: Zones[rng.Intn(len(Zones))]}
	for range 1 + rng.Intn(3) {
		sh := policy.Shift{Start: randomClock(rng), End: randomClock(rng)}
		switch rng.Intn(6) {
		case 0:
			sh.End = sh.Start // 24 hours
		case 1:
			sh.Start, sh.End = "22:00", "06:00" // a classic night shift
		}
		for _, i := range rng.Perm(7)[:1+rng.Intn(7)] {
			sh.Weekdays = append(sh.Weekdays, policy.Weekdays[i])
		}
		// API order (Sunday first) keeps the JSON readable and stable.
		slices.SortFunc(sh.Weekdays, func(a, b string) int {
			return slices.Index(policy.Weekdays, a) - slices.Index(policy.Weekdays, b)
		})
		s.Shifts = append(s.Shifts, sh)
	}
	return s
}
