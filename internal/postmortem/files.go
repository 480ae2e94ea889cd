package postmortem

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// WriteDir writes the bundle into dir in each of formats, as index.md,
// index.json and index.html, with every chart beside them as
// chart-ID.svg and chart-ID.png (the Markdown shows the PNGs, which chat
// tools and most Markdown viewers display). Each file is written to a
// temporary name and renamed, so a reader never sees half a bundle. It
// returns the paths written, the documents first.
func WriteDir(dir string, b *Bundle, formats ...string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create bundle directory: %w", err)
	}
	var docs, charts []string
	files := map[string]string{}
	for _, c := range b.Charts {
		svg, err := c.SVG()
		if err != nil {
			return nil, err
		}
		png, err := c.PNG()
		if err != nil {
			return nil, err
		}
		for name, data := range map[string][]byte{"chart-" + c.ID + ".svg": svg, "chart-" + c.ID + ".png": png} {
			p := filepath.Join(dir, name)
			if err := writeFileAtomic(p, data); err != nil {
				return nil, err
			}
			charts = append(charts, p)
		}
		files[c.ID] = "chart-" + c.ID + ".png"
	}
	for _, f := range formats {
		var buf bytes.Buffer
		if err := Render(&buf, b, f, RenderOptions{ChartFiles: files}); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, "index."+f)
		if err := writeFileAtomic(p, buf.Bytes()); err != nil {
			return nil, err
		}
		docs = append(docs, p)
	}
	return append(docs, charts...), nil
}

// writeFileAtomic writes data to path through a temporary file and a
// rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
