package config

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Conf is an ordered string map with Python dict semantics: setting an
// existing key keeps its place, deleting and setting again moves it to the
// end. PasteDeploy's global_conf and local_conf are such dicts, and several
// contexts share one dict; Conf is used by pointer so that sharing (and what
// PasteDeploy's later updates make of it) is reproduced exactly.
type Conf struct {
	keys []string
	vals map[string]string
	// origins says where each value was written ("file:LINE [section]
	// option", or "--set key"); it travels with the value through copies
	// and updates.
	origins map[string]string
}

// NewConf returns an empty Conf.
func NewConf() *Conf { return &Conf{vals: map[string]string{}} }

// ConfOf builds a Conf from alternating key, value arguments.
func ConfOf(kv ...string) *Conf {
	c := NewConf()
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return c
}

// Get returns the value of key and whether it is set.
func (c *Conf) Get(key string) (string, bool) {
	if c == nil {
		return "", false
	}
	v, ok := c.vals[key]
	return v, ok
}

// Has reports whether key is set.
func (c *Conf) Has(key string) bool { _, ok := c.Get(key); return ok }

// Set sets key, keeping its position when it already exists.
func (c *Conf) Set(key, value string) { c.setFrom(key, value, "") }

// Origin says where the value of key was written: "file:LINE [section]
// option" or "--set key"; "" when unknown (here, __file__).
func (c *Conf) Origin(key string) string {
	if c == nil {
		return ""
	}
	return c.origins[key]
}

func (c *Conf) setFrom(key, value, origin string) {
	if _, ok := c.vals[key]; !ok {
		c.keys = append(c.keys, key)
	}
	c.vals[key] = value
	if origin == "" {
		delete(c.origins, key)
		return
	}
	if c.origins == nil {
		c.origins = map[string]string{}
	}
	c.origins[key] = origin
}

// Delete removes key (no-op when absent).
func (c *Conf) Delete(key string) {
	if _, ok := c.vals[key]; !ok {
		return
	}
	delete(c.vals, key)
	delete(c.origins, key)
	for i, k := range c.keys {
		if k == key {
			c.keys = append(c.keys[:i:i], c.keys[i+1:]...)
			break
		}
	}
}

// Pop removes key and returns its value.
func (c *Conf) Pop(key string) (string, bool) {
	v, ok := c.Get(key)
	c.Delete(key)
	return v, ok
}

// Keys returns the keys in order.
func (c *Conf) Keys() []string {
	if c == nil {
		return nil
	}
	return append([]string(nil), c.keys...)
}

// Len is the number of keys.
func (c *Conf) Len() int {
	if c == nil {
		return 0
	}
	return len(c.keys)
}

// Copy returns an independent copy.
func (c *Conf) Copy() *Conf {
	n := NewConf()
	n.Update(c)
	return n
}

// Update sets every key of o in c, in o's order (dict.update).
func (c *Conf) Update(o *Conf) {
	if o == nil {
		return
	}
	for _, k := range o.keys {
		c.setFrom(k, o.vals[k], o.origins[k])
	}
}

// Map returns the values as a plain map.
func (c *Conf) Map() map[string]string {
	m := make(map[string]string, c.Len())
	for _, k := range c.Keys() {
		m[k] = c.vals[k]
	}
	return m
}

// without returns a copy lacking the given keys.
func (c *Conf) without(keys ...string) *Conf {
	n := c.Copy()
	for _, k := range keys {
		n.Delete(k)
	}
	return n
}

// originsConf is the origins as a Conf (same key order), for JSON.
func (c *Conf) originsConf() *Conf {
	o := NewConf()
	for _, k := range c.Keys() {
		if v := c.origins[k]; v != "" {
			o.Set(k, v)
		}
	}
	return o
}

// MarshalJSON writes the keys in order.
func (c *Conf) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range c.Keys() {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(c.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object of strings, keeping the order.
func (c *Conf) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("conf: want a JSON object, got %v", t)
	}
	*c = Conf{vals: map[string]string{}}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("conf: value of %v: %w", kt, err)
		}
		c.Set(kt.(string), v)
	}
	_, err = dec.Token()
	return err
}
