package store

// For the tests of package store_test, which use packages that import the
// store (server/tiersecrets), on the engine of the current pass.
var (
	NewTestStore  = newStore
	OpenTestStore = openTestStore
	RawTestDB     = rawDB
)
