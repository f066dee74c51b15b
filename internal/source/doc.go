// Package source reads event rows of a catalog from CSV and JSON Lines
// files, validating every value with the catalog's field types and naming
// each bad row by file and line, and writes events in the JSON form that
// portrait produces to Kafka and the speed layer decodes.
//
// CSV files without a header list the fields in catalog order; a first
// line that names every catalog field is a header, and columns are then
// matched by name (extra columns are ignored). JSON Lines rows are objects
// keyed by field name; unknown keys are ignored and every field is
// required. Files ending in .gz are decompressed.
package source
