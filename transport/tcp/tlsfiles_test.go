package tcp

import "testing"

func TestTLSFilesCheckAndLoad(t *testing.T) {
	for _, tc := range []struct {
		f       TLSFiles
		partial bool
	}{
		{TLSFiles{}, false},
		{TLSFiles{Cert: "c"}, true},
		{TLSFiles{Cert: "c", Key: "k"}, true},
		{TLSFiles{CA: "a"}, true},
		{TLSFiles{Cert: "c", Key: "k", CA: "a"}, false},
	} {
		if err := tc.f.Check(); (err != nil) != tc.partial {
			t.Errorf("%+v: Check = %v, want partial %v", tc.f, err, tc.partial)
		}
	}
	if cfg, err := (TLSFiles{}).Load(); cfg != nil || err != nil {
		t.Fatalf("no files: %v, %v; want plain TCP", cfg, err)
	}
	if _, err := (TLSFiles{Cert: "/nonexistent/c", Key: "/nonexistent/k", CA: "/nonexistent/a"}).Load(); err == nil {
		t.Fatal("missing files loaded")
	}
}
