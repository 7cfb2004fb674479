// A local S3-compatible server for the documents storage adapter's tests: gofakes3 (an S3 API
// implementation) over an in-memory backend, on 127.0.0.1 only.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	faker := gofakes3.New(s3mem.New())
	log.Printf("s3 server on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, faker.Server()))
}
