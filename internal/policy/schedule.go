package policy

import (
	"fmt"
	"strings"
	"sync"
	"time"
	// The tz database is embedded as a fallback so that a schedule means the
	// same thing on a minimal host without /usr/share/zoneinfo as on a
	// developer machine; the host's database is still preferred when present.
	_ "time/tzdata"

	"github.com/realguardio/realguardio/internal/platform/apperr"
)

// Schedule restricts when an employee may arm and disarm (AUTHZ.md,
// "Schedules"). Its JSON form is the one of API.md.
type Schedule struct {
	// TimeZone is an IANA time zone name such as "Europe/Berlin".
	TimeZone string `json:"timezone"`
	// Shifts are the periods in which the employee is on duty.
	Shifts []Shift `json:"shifts"`
}

// Shift is a set of weekdays with a start and end wall-clock time in the
// schedule's zone. An end that is not after the start runs past midnight
// into the next day; start is inclusive, end exclusive.
type Shift struct {
	Weekdays []string `json:"weekdays"`
	Start    string   `json:"start"`
	End      string   `json:"end"`
}

// Weekdays are the accepted weekday names, Sunday first as in time.Weekday.
var Weekdays = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}

func weekdayIndex(s string) (time.Weekday, bool) {
	for i, w := range Weekdays {
		if w == s {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// parseClock parses "HH:MM" (00:00 to 23:59, exactly two digits each) into
// seconds after midnight. Digits are checked one by one rather than with
// strconv.Atoi, which would also accept signs ("+1:00", "-0:00").
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' || !isDigit(s[0]) || !isDigit(s[1]) || !isDigit(s[3]) || !isDigit(s[4]) {
		return 0, false
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*3600 + m*60, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Validate checks the schedule and returns an Invalid apperr naming the
// first offending field, in the form the HTTP API reports.
func (s Schedule) Validate() error {
	if s.TimeZone == "" {
		return apperr.InvalidField("timezone", "is required (an IANA time zone such as Europe/Berlin)")
	}
	if _, err := loadLocation(s.TimeZone); err != nil {
		return apperr.InvalidField("timezone", "%q is not a known IANA time zone", s.TimeZone)
	}
	if len(s.Shifts) == 0 {
		return apperr.InvalidField("shifts", "must contain at least one shift (delete the schedule to make the employee unrestricted)")
	}
	for i, sh := range s.Shifts {
		f := fmt.Sprintf("shifts[%d]", i)
		if len(sh.Weekdays) == 0 {
			return apperr.InvalidField(f+".weekdays", "must name at least one weekday")
		}
		seen := map[string]bool{}
		for _, w := range sh.Weekdays {
			if _, ok := weekdayIndex(w); !ok {
				return apperr.InvalidField(f+".weekdays", "%q is not a weekday (use %s)", w, strings.Join(Weekdays, ", "))
			}
			if seen[w] {
				return apperr.InvalidField(f+".weekdays", "%q is listed twice", w)
			}
			seen[w] = true
		}
		if _, ok := parseClock(sh.Start); !ok {
			return apperr.InvalidField(f+".start", "%q is not a time of day HH:MM", sh.Start)
		}
		if _, ok := parseClock(sh.End); !ok {
			return apperr.InvalidField(f+".end", "%q is not a time of day HH:MM", sh.End)
		}
	}
	return nil
}

// Covers reports whether instant t falls inside a shift of the schedule.
// The comparison is made on the wall clock of the schedule's zone, so
// daylight-saving changes are the time zone database's business: a shift
// 09:00-17:00 means 09:00-17:00 local time in summer and in winter, and a
// wall-clock time skipped by a spring-forward change is simply never
// reached. An invalid schedule covers nothing (fail closed).
func (s Schedule) Covers(t time.Time) bool {
	loc, err := loadLocation(s.TimeZone)
	if err != nil {
		return false
	}
	local := t.In(loc)
	day := local.Weekday()
	yesterday := (day + 6) % 7
	secs := local.Hour()*3600 + local.Minute()*60 + local.Second()
	for _, sh := range s.Shifts {
		start, ok1 := parseClock(sh.Start)
		end, ok2 := parseClock(sh.End)
		if !ok1 || !ok2 {
			continue
		}
		for _, w := range sh.Weekdays {
			wd, ok := weekdayIndex(w)
			if !ok {
				continue
			}
			if end > start {
				if wd == day && secs >= start && secs < end {
					return true
				}
				continue
			}
			// Night shift: from start on wd to end on the next day.
			if wd == day && secs >= start {
				return true
			}
			if wd == yesterday && secs < end {
				return true
			}
		}
	}
	return false
}

// locations caches resolved zones by name. time.LoadLocation reads and
// parses a zoneinfo file on every call, which would put file I/O and
// allocations on the authorization hot path. Only successes are cached: the
// set of valid names is bounded by the tz database, whereas failed names come
// from user input and could grow the cache without limit.
var locations sync.Map // string -> *time.Location

// loadLocation resolves an IANA zone name. "Local" is refused: a schedule's
// meaning must not depend on the machine that evaluates it.
func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q not allowed", name)
	}
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, loc)
	return loc, nil
}
