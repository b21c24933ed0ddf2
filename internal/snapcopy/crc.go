package snapcopy

// This file combines CRC32Cs, so that a file's checksum follows from the
// checksums of its chunks, whatever order they arrived in, without reading
// the file back.

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcShift is the linear map (over GF(2)) that carries a CRC32C across a
// run of zero bytes: if a and b are byte strings, then
// crc(a‖b) = shift(len(b)).apply(crc(a)) ^ crc(b), for Go's conditioned
// CRC (the pre- and post-inversions cancel out). Column i is the image of
// bit i.
type crcShift [32]uint32

// apply multiplies the matrix by the vector crc.
func (m *crcShift) apply(crc uint32) uint32 {
	var sum uint32
	for i := 0; crc != 0; i, crc = i+1, crc>>1 {
		if crc&1 != 0 {
			sum ^= m[i]
		}
	}
	return sum
}

// then returns the map doing m after n.
func (m *crcShift) then(n *crcShift) crcShift {
	var out crcShift
	for i := range out {
		out[i] = m.apply(n[i])
	}
	return out
}

// newCRCShift returns the map across n zero bytes (n >= 0), by squaring the
// map across one zero bit: O(log n) 32×32 matrix products.
func newCRCShift(n int64) *crcShift {
	var bit, out crcShift
	// One zero bit through the reflected register: shift right, and fold
	// the polynomial in when the bit shifted out was set.
	bit[0] = 0x82f63b78 // reversed Castagnoli polynomial
	for i := 1; i < 32; i++ {
		bit[i] = 1 << (i - 1)
	}
	for i := range out {
		out[i] = 1 << i
	}
	for e := uint64(n) * 8; e > 0; e >>= 1 {
		if e&1 != 0 {
			out = bit.then(&out)
		}
		bit = bit.then(&bit)
	}
	return &out
}

// combineCRCs returns the CRC32C of the concatenation of chunks whose
// CRC32Cs are crcs, all of size chunkSize except the last, of lastSize
// bytes. full is newCRCShift(chunkSize).
func combineCRCs(crcs []uint32, full *crcShift, lastSize int64) uint32 {
	if len(crcs) == 0 {
		return 0
	}
	crc := crcs[0]
	if len(crcs) == 1 {
		return crc
	}
	for _, c := range crcs[1 : len(crcs)-1] {
		crc = full.apply(crc) ^ c
	}
	return newCRCShift(lastSize).apply(crc) ^ crcs[len(crcs)-1]
}
