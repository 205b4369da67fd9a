package server

import (
	"testing"
	"time"
)

func TestReconnectWindow(t *testing.T) {
	tests := []struct {
		online, rate int
		want         time.Duration
	}{
		{0, 1500, time.Second},
		{5, 1500, time.Second},
		{19000, 1500, 12*time.Second + 666666666},
		{1_000_000, 1500, time.Minute},
		{10, 0, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := reconnectWindow(tt.online, tt.rate); got != tt.want {
			t.Errorf("reconnectWindow(%d, %d) = %v, want %v", tt.online, tt.rate, got, tt.want)
		}
	}
}
