// Package schemas holds the one tag model that every executor of portrait
// shares: the catalog (event schema, bucket size and tags), its validation,
// the expression language of `where` filters and `rule` tags, and the value
// types that flow between the layers.
//
// A catalog is parsed from YAML (see catalogs/), validated as a whole, and
// compiled into a [Catalog]: fields and tags resolved to indexes, windows
// turned into milliseconds, and expressions type-checked into [Node] trees.
// The executors (reference evaluator, incremental speed layer, local Arrow
// batch engine, ClickHouse SQL) all start from the compiled form, so they
// can only disagree about how they aggregate, never about what a tag means.
package schemas
