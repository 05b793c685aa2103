package validity

import (
	"fmt"
	"time"
)

// era is a Japanese era (元号) from its first day, in the Gregorian calendar.
type era struct {
	code  int // R-P2's one-digit era code
	first Date
}

// eras lists the eras R-P2 can encode, oldest first. Each era runs from its
// first day to the day before the next era's first day; the last runs on.
//
// Meiji starts on 1868-01-25 (Meiji 1-1-1 of the lunisolar calendar): the era
// was proclaimed on 1868-10-23 but applied from the first day of that year.
// Taisho and Showa start on the day the previous emperor died, Heisei on the
// next day (1989-01-08), Reiwa on 2019-05-01.
var eras = []era{
	{1, Date{1868, time.January, 25}},  // Meiji 明治
	{2, Date{1912, time.July, 30}},     // Taisho 大正
	{3, Date{1926, time.December, 25}}, // Showa 昭和
	{4, Date{1989, time.January, 8}},   // Heisei 平成
	{5, Date{2019, time.May, 1}},       // Reiwa 令和
}

// EraCode returns the date of birth as the SIGN certificate writes it (R-P2):
// one digit for the era in force on that date (1 Meiji, 2 Taisho, 3 Showa,
// 4 Heisei, 5 Reiwa) followed by the Gregorian date as YYYYMMDD, so
// 1980-12-31 gives "319801231" and 2019-05-01 gives "520190501".
//
// A date before Meiji (1868-01-25) or one that does not exist gives an error
// wrapping ErrInvalidDate; the error does not repeat the date (R-P4).
func EraCode(birth Date) (string, error) {
	if err := checkDate("date of birth", birth); err != nil {
		return "", err
	}
	for i := len(eras) - 1; i >= 0; i-- {
		if e := eras[i]; !birth.Before(e.first) {
			return fmt.Sprintf("%d%04d%02d%02d", e.code, birth.Year, int(birth.Month), birth.Day), nil
		}
	}
	return "", fmt.Errorf("%w: date of birth: before the Meiji era (%s), no era code", ErrInvalidDate, eras[0].first)
}
