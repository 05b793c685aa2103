// Package serial makes certificate serial numbers and opaque subject ids.
//
// Serial numbers follow R-P1: 127 bits from the operating system's CSPRNG,
// with the top bit fixed so every serial has the same length (16 octets) and
// is positive and never zero. Uniqueness is enforced by the store, which
// refuses a serial it has seen; randomness makes a clash practically
// impossible anyway.
package serial
