package store_test

import (
	"context"
	"fmt"
	"os"

	"github.com/chancery/chancery/store"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "chancery-store")
	defer os.RemoveAll(dir)

	// The embedded default: a SQLite file under the state directory.
	db, err := store.Open(ctx, store.Config{}, dir)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	// A capability owns its tables and migrates them itself.
	err = db.Migrate(ctx, "notes", []store.Migration{
		{Version: 1, Name: "notes", SQLite: "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)"},
	})
	if err != nil {
		panic(err)
	}
	// '?' placeholders work on both engines through Rebind.
	db.ExecContext(ctx, db.Rebind("INSERT INTO notes (id, body) VALUES (?, ?)"), "n1", "hello")
	var body string
	db.QueryRowContext(ctx, db.Rebind("SELECT body FROM notes WHERE id = ?"), "n1").Scan(&body)
	fmt.Println(db.Driver(), body)
	// Output: sqlite hello
}
