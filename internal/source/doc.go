// Package source reads event rows of a catalog from CSV and JSON Lines
// files, validating every value with the catalog's field types and naming
// each bad row by file and line, and writes events in the JSON form that
// portrait produces to Kafka and the speed layer decodes. It is the one
// parser of input rows: `portrait produce` and `portrait import`
// (warehouse.Import) both read through it.
//
// Every row is one line; blank lines are skipped and a final line without
// a trailing newline is a truncated record (ErrTruncated), rejected even
// when it parses. CSV files without a header list the fields in catalog
// order. The first line of a CSV file is a header when every cell is a
// catalog field name; it must then name every field exactly once, and
// columns are matched by name. A CSV cell cannot span lines. JSON Lines
// rows are objects keyed by field name; keys that are not fields are
// ignored and every field is required. Files ending in .gz are
// decompressed.
package source
