package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/chancery/chancery/config"
)

func Example() {
	dir, _ := os.MkdirTemp("", "chancery-config")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "chancery.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:7701\nlog:\n  level: debug\n  colour: blue\n"), 0o600)

	// The environment overrides the file; strict decoding reports the unknown key.
	cfg, err := config.Load(path, []string{"CHANCERY_LOG_FORMAT=json"})
	for _, p := range config.Problems(err) {
		fmt.Println(filepath.Base(path) + p.Error()[len(path):])
	}
	fmt.Println(cfg.Listen, cfg.Log.Level, cfg.Log.Format, cfg.Validate() == nil)
	// Output:
	// chancery.yaml:4: unknown key "colour"
	// 127.0.0.1:7701 debug json true
}
