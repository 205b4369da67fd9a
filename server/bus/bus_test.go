package bus

import (
	"context"
	"testing"
)

func TestLocal(t *testing.T) {
	var b Local
	var got []string
	unsub, _ := b.Subscribe("a", func(d []byte) { got = append(got, "1:"+string(d)) })
	b.Subscribe("a", func(d []byte) { got = append(got, "2:"+string(d)) })
	b.Subscribe("b", func(d []byte) { got = append(got, "b:"+string(d)) })
	b.Publish(context.Background(), "a", []byte("x"))
	unsub()
	b.Publish(context.Background(), "a", []byte("y"))
	want := []string{"1:x", "2:x", "2:y"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
