// Command image packs static binaries into a single-layer image and writes it as a
// docker-archive tarball that `ctr images import` reads, so the cluster tier's images
// are built here and never pulled.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	binary := flag.String("binary", "", "static binary to pack")
	dest := flag.String("path", "", "where the binary goes in the image (default /NAME)")
	ref := flag.String("name", "", "image reference, e.g. intent-mapper:0.1.0")
	out := flag.String("out", "", "tarball to write")
	user := flag.String("user", "", "user the image runs as, e.g. 65532:65532")
	cmd := flag.String("cmd", "", "default arguments, comma-separated")
	also := flag.String("also", "", "more binaries to install at /NAME, comma-separated (not the entrypoint)")
	flag.Parse()
	if *binary == "" || *ref == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if *dest == "" {
		*dest = "/" + path.Base(*binary)
	}
	files := map[string]string{*dest: *binary}
	for _, b := range strings.Split(*also, ",") {
		if b != "" {
			files["/"+path.Base(b)] = b
		}
	}
	if err := pack(files, *dest, *ref, *out, *user, *cmd); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// pack writes an image holding files (path in the image: file here) whose entrypoint is dest.
func pack(files map[string]string, dest, ref, out, user, cmd string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	layerTar, err := layerOf(files)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg := v1.Config{Entrypoint: []string{dest}, User: user, Env: []string{"PATH=/"}}
	if cmd != "" {
		cfg.Cmd = strings.Split(cmd, ",")
	}
	file, err := img.ConfigFile()
	if err != nil {
		return err
	}
	file = file.DeepCopy()
	file.Config = cfg
	file.OS, file.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, file); err != nil {
		return err
	}
	return tarball.WriteToFile(out, tag, img)
}

// layerOf is a tar with each binary at its path and a /tmp the programs may write to.
func layerOf(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}); err != nil {
		return nil, err
	}
	dests := make([]string, 0, len(files))
	for dest := range files {
		dests = append(dests, dest)
	}
	sort.Strings(dests) // the same files make the same layer
	for _, dest := range dests {
		data, err := os.ReadFile(files[dest])
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(dest, "/"), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
