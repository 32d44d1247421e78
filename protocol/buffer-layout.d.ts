/**
 * Minimal typings for the `buffer-layout` package (it ships none). Only what arraysim uses:
 * fixed-span structures of big-endian integers, blobs and bit structures. Used for cold-path
 * parameter lists (PERSISTENT RESERVE OUT, TransportIDs …), not for the per-PDU BHS
 * (see protocol/iscsi/pdu.ts for why).
 */
declare module 'buffer-layout' {
  export class Layout<T = any> {
    readonly span: number;
    readonly property?: string;
    decode(b: Buffer, offset?: number): T;
    encode(src: T, b: Buffer, offset?: number): number;
    getSpan(b?: Buffer, offset?: number): number;
  }
  export class Structure<T = any> extends Layout<T> {
    readonly fields: Layout[];
    offsetOf(property: string): number | undefined;
  }
  export class BitField extends Layout<number> {
    readonly bits: number;
  }
  export class BitStructure<T = any> extends Layout<T> {
    readonly fields: BitField[];
    addField(bits: number, property?: string): BitField;
    addBoolean(property: string): BitField;
  }
  export class Blob extends Layout<Buffer> {}

  export function struct<T = any>(fields: Layout[], property?: string, decodePrefixes?: boolean): Structure<T>;
  export function bits<T = any>(word: Layout<number>, msb?: boolean, property?: string): BitStructure<T>;
  export function blob(length: number, property?: string): Blob;
  export function u8(property?: string): Layout<number>;
  export function u16be(property?: string): Layout<number>;
  export function u24be(property?: string): Layout<number>;
  export function u32be(property?: string): Layout<number>;
  export function u48be(property?: string): Layout<number>;
  export function seq<T = any>(element: Layout<T>, count: number, property?: string): Layout<T[]>;
}
