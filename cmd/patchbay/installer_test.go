package main

import "testing"

func TestVersionLess(t *testing.T) {
	for _, c := range [][2]string{
		{"v1.9.3", "v1.10.0"},
		{"v1.4.0", "v1.4.0-3-gabc1234"},
		{"v1.4.0-3-gabc1234", "v1.4.0-12-g0000000"},
		{"v0.9.99", "v1.0.0"},
		{"v1.0.09", "v1.0.10"},
		{"v2.0.0", "v10.0.0"},
		{"1.0.0", "v1.0.0"},
	} {
		if !versionLess(c[0], c[1]) || versionLess(c[1], c[0]) {
			t.Errorf("want %s < %s", c[0], c[1])
		}
	}
	if versionLess("v1.2.3", "v1.2.3") {
		t.Error("v1.2.3 < v1.2.3")
	}
}
