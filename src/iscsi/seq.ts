/** Serial number arithmetic for 32-bit sequence numbers (RFC 1982, as RFC 7143 §4.2.2.1 requires). */
export function snLt(a: number, b: number): boolean {
  return a !== b && ((a < b && b - a < 0x80000000) || (a > b && a - b > 0x80000000));
}
export function snGt(a: number, b: number): boolean {
  return a !== b && !snLt(a, b);
}
export function snAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
