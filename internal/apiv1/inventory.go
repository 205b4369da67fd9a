package apiv1

import "time"

// Inventory is GET /v1/agents/{id}/inventory: what an agent reported about
// its hardware and software (issue 17).
type Inventory struct {
	AgentID       string     `json:"agent_id"`
	Hostname      string     `json:"hostname"`
	OS            string     `json:"os"`
	OSVersion     string     `json:"os_version,omitempty"`
	Hardware      Hardware   `json:"hardware"`
	BootTime      *time.Time `json:"boot_time,omitempty"`  // last reboot
	UpdatedAt     *time.Time `json:"updated_at,omitempty"` // hardware last changed
	SoftwareCount int        `json:"software_count"`
	SoftwareHash  string     `json:"software_hash,omitempty"`
	SoftwareAt    *time.Time `json:"software_at,omitempty"` // software list last changed
	Software      []Package  `json:"software,omitempty"`    // with ?software=1
	Updates       *Updates   `json:"updates,omitempty"`     // pending updates; absent when never checked
}

// Hardware is an agent's hardware; zero fields are unknown.
type Hardware struct {
	CPUModel    string `json:"cpu_model,omitempty"`
	CPUCount    int    `json:"cpu_count,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Vendor      string `json:"vendor,omitempty"`
	Model       string `json:"model,omitempty"`
	Serial      string `json:"serial,omitempty"`
	Firmware    string `json:"firmware,omitempty"`
	Disks       []Disk `json:"disks,omitempty"`
}

// Disk is one mounted file system.
type Disk struct {
	Mount string `json:"mount"`
	Size  int64  `json:"size"`
	Free  int64  `json:"free"`
}

// Package is one installed piece of software.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Source  string `json:"source,omitempty"`
}

// SoftwareHolding is one line of GET /v1/software?name=N: an agent and the
// version of the package it has.
type SoftwareHolding struct {
	AgentID  string `json:"agent_id"`
	Hostname string `json:"hostname"`
	Site     string `json:"site"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Source   string `json:"source,omitempty"`
}

// SoftwareChange is one entry of GET /v1/agents/{id}/inventory/history.
type SoftwareChange struct {
	At         time.Time `json:"at"`
	Change     string    `json:"change"` // installed, removed, upgraded
	Name       string    `json:"name"`
	OldVersion string    `json:"old_version,omitempty"`
	NewVersion string    `json:"new_version,omitempty"`
	Source     string    `json:"source,omitempty"`
}
