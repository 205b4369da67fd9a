//go:build windows

package main

// Local printers through winspool.drv (lazy procs: x/sys/windows has no
// wrappers): EnumPrintersW level 2 for their status, SetPrinterW with
// PRINTER_CONTROL_RESUME to resume a paused one. Compiled and vetted on
// Linux; not run on a Windows machine.

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	winspool          = windows.NewLazySystemDLL("winspool.drv")
	procEnumPrintersW = winspool.NewProc("EnumPrintersW")
	procOpenPrinterW  = winspool.NewProc("OpenPrinterW")
	procSetPrinterW   = winspool.NewProc("SetPrinterW")
	procClosePrinter  = winspool.NewProc("ClosePrinter")
)

const (
	printerEnumLocal        = 0x2
	printerAccessAdminister = 0x4
	printerControlResume    = 2
)

// printerInfo2 is PRINTER_INFO_2W.
type printerInfo2 struct {
	ServerName, PrinterName, ShareName, PortName, DriverName, Comment, Location *uint16
	DevMode                                                                     uintptr
	SepFile, PrintProcessor, Datatype, Parameters                               *uint16
	SecurityDescriptor                                                          uintptr
	Attributes, Priority, DefaultPriority, StartTime, UntilTime, Status, Jobs   uint32
	AveragePPM                                                                  uint32
}

// printerDefaults is PRINTER_DEFAULTSW.
type printerDefaults struct {
	Datatype      *uint16
	DevMode       uintptr
	DesiredAccess uint32
}

// localPrinters lists the local printers with their status.
func localPrinters() ([]winPrinter, error) {
	var needed, count uint32
	r, _, err := procEnumPrintersW.Call(printerEnumLocal, 0, 2, 0, 0, uintptr(unsafe.Pointer(&needed)), uintptr(unsafe.Pointer(&count)))
	if r == 0 && !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) {
		return nil, fmt.Errorf("list printers: EnumPrinters: %w", err)
	}
	if needed == 0 {
		return nil, nil
	}
	buf := make([]byte, needed)
	r, _, err = procEnumPrintersW.Call(printerEnumLocal, 0, 2, uintptr(unsafe.Pointer(&buf[0])), uintptr(needed),
		uintptr(unsafe.Pointer(&needed)), uintptr(unsafe.Pointer(&count)))
	if r == 0 {
		return nil, fmt.Errorf("list printers: EnumPrinters: %w", err)
	}
	infos := unsafe.Slice((*printerInfo2)(unsafe.Pointer(&buf[0])), count)
	ps := make([]winPrinter, 0, count)
	for _, in := range infos {
		ps = append(ps, winPrinter{Name: windows.UTF16PtrToString(in.PrinterName), Status: in.Status,
			States: describeStatus(in.Status), Jobs: in.Jobs})
	}
	return ps, nil
}

// resumePrinter resumes a paused printer (needs administrator rights).
func resumePrinter(name string) error {
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return fmt.Errorf("resume printer %s: %w", name, err)
	}
	var h windows.Handle
	def := printerDefaults{DesiredAccess: printerAccessAdminister}
	if r, _, err := procOpenPrinterW.Call(uintptr(unsafe.Pointer(n)), uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&def))); r == 0 {
		return fmt.Errorf("resume printer %s: OpenPrinter: %w", name, err)
	}
	defer procClosePrinter.Call(uintptr(h)) //nolint:errcheck
	if r, _, err := procSetPrinterW.Call(uintptr(h), 0, 0, printerControlResume); r == 0 {
		return fmt.Errorf("resume printer %s: SetPrinter: %w", name, err)
	}
	return nil
}
