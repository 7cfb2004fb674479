// The local SMTP sink: accepts every message and keeps it, byte for byte (dot-unstuffed, CRLF
// kept), as <maildir>/<UTC time>-<random>.eml. Nothing is relayed; no AUTH, no STARTTLS.
//
// Written in Go with the standard library only: the sink stands in for the mutuelle's mail
// relay, which runs elsewhere in production, so on a 2-core machine it should cost next to
// nothing beside the services being measured (the Python/aiosmtpd sink it replaces took ~2 ms
// of CPU per message, as much as the service sending it).
//
//	smtpsink -addr 127.0.0.1:1025 -maildir DIR
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	hostname  = "espace-smtp-sink"
	maxData   = 32 << 20 // as aiosmtpd's default data_size_limit
	maxLine   = 4096     // a command line (RFC 5321: 512; generous for long parameters)
	idleLimit = 300 * time.Second
)

type sink struct{ maildir string }

// store writes under a dot-name no "*.eml" glob matches, then renames in one step, so a reader
// never sees half a message. Tests may wipe the folder between cases: it is recreated.
func (s *sink) store(data []byte) (string, error) {
	if err := os.MkdirAll(s.maildir, 0o755); err != nil {
		return "", err
	}
	random := make([]byte, 3)
	if _, err := rand.Read(random); err != nil {
		return "", err
	}
	now := time.Now().UTC()
	name := fmt.Sprintf("%s.%06dZ-%s.eml", now.Format("20060102T150405"), now.Nanosecond()/1000, hex.EncodeToString(random))
	tmp := filepath.Join(s.maildir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.maildir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return name, nil
}

var errTooBig = errors.New("message too big")

// readData reads the DATA section up to the lone ".": dot-unstuffed, line endings as sent.
func readData(r *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	tooBig := false
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: keep reading it whole.
			rest, err2 := r.ReadBytes('\n')
			line = append(append([]byte{}, line...), rest...)
			err = err2
		}
		if err != nil {
			return nil, err
		}
		if bytes.Equal(line, []byte(".\r\n")) || bytes.Equal(line, []byte(".\n")) {
			if tooBig {
				return nil, errTooBig
			}
			return buf.Bytes(), nil
		}
		if line[0] == '.' {
			line = line[1:]
		}
		if buf.Len()+len(line) > maxData {
			tooBig = true // read on to the end of the message, then refuse it
			continue
		}
		buf.Write(line)
	}
}

func (s *sink) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	w := bufio.NewWriter(conn)
	reply := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l)
			w.WriteString("\r\n")
		}
	}
	flush := func() bool {
		// Commands sent in one go (PIPELINING) are answered in one go.
		if r.Buffered() > 0 {
			return true
		}
		return w.Flush() == nil
	}
	reply("220 " + hostname + " ESMTP")
	w.Flush()
	greeted, mail, rcpts := false, false, 0
	for {
		conn.SetReadDeadline(time.Now().Add(idleLimit))
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(line) > maxLine {
			reply("500 Error: line too long")
			w.Flush()
			return
		}
		if err != nil {
			return
		}
		command := strings.TrimRight(string(line), "\r\n")
		verb, arg := command, ""
		if i := strings.IndexByte(command, ' '); i >= 0 {
			verb, arg = command[:i], strings.TrimSpace(command[i+1:])
		}
		switch strings.ToUpper(verb) {
		case "EHLO":
			greeted, mail, rcpts = true, false, 0
			reply("250-"+hostname, fmt.Sprintf("250-SIZE %d", maxData), "250-8BITMIME", "250-SMTPUTF8", "250-PIPELINING", "250 HELP")
		case "HELO":
			greeted, mail, rcpts = true, false, 0
			reply("250 " + hostname)
		case "MAIL":
			switch {
			case !greeted:
				reply("503 Error: send HELO first")
			case mail:
				reply("503 Error: nested MAIL command")
			case !strings.HasPrefix(strings.ToUpper(arg), "FROM:"):
				reply("501 Syntax: MAIL FROM: <address>")
			default:
				mail = true
				reply("250 OK")
			}
		case "RCPT":
			switch {
			case !mail:
				reply("503 Error: need MAIL command")
			case !strings.HasPrefix(strings.ToUpper(arg), "TO:"):
				reply("501 Syntax: RCPT TO: <address>")
			default:
				rcpts++
				reply("250 OK")
			}
		case "DATA":
			if rcpts == 0 {
				reply("503 Error: need RCPT command")
				break
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			w.Flush()
			conn.SetReadDeadline(time.Now().Add(idleLimit))
			data, err := readData(r)
			mail, rcpts = false, 0
			if errors.Is(err, errTooBig) {
				reply("552 Error: Too much mail data")
				break
			}
			if err != nil {
				return
			}
			name, err := s.store(data)
			if err != nil {
				log.Printf("could not store a message of %d bytes: %v", len(data), err)
				reply("451 Requested action aborted: local error in processing")
				break
			}
			// No addresses or content in the log: file name and size only.
			log.Printf("stored %s (%d bytes)", name, len(data))
			reply("250 Message accepted for delivery")
		case "RSET":
			mail, rcpts = false, 0
			reply("250 OK")
		case "NOOP":
			reply("250 OK")
		case "VRFY":
			reply("252 Cannot VRFY user, but will accept message and attempt delivery")
		case "QUIT":
			reply("221 Bye")
			w.Flush()
			return
		default:
			reply(fmt.Sprintf("500 Error: command %q not recognized", strings.ToUpper(verb)))
		}
		if !flush() {
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:1025", "address to listen on")
	maildir := flag.String("maildir", "var/mail", "folder the .eml files are written to")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)
	dir, err := filepath.Abs(*maildir)
	if err != nil {
		log.Fatal(err)
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	s := &sink{maildir: dir}
	log.Printf("listening on %s, writing to %s", *addr, dir)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		listener.Close()
	}()
	for {
		conn, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go s.serve(conn)
	}
	// Connections still open are cut: a client mid-message gets no 250 and retries (as with a
	// relay that goes away); nothing half-written is left, thanks to the rename.
	log.Printf("stopped")
}
