package aether

// OpenFake opens a Store over the pure-Go fake backend of fake_test.go, for the tests
// of package aether_test. Options as for OpenMemory.
var OpenFake = openFake
