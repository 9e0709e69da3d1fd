package apiclient

import (
	"context"
	"net/url"
	"strconv"

	"github.com/realguardio/realguardio/internal/policy"
)

// AccessUser is one user of an access review: what the grants give
// (Actions: VIEW, ARM, DISARM), what is allowed now, each grant, and the
// schedule when time-restricted.
type AccessUser struct {
	UserID     string           `json:"userId"`
	Username   string           `json:"username"`
	Actions    []string         `json:"actions"`
	AllowedNow []string         `json:"allowedNow"`
	Grants     []policy.Grant   `json:"grants"`
	Schedule   *policy.Schedule `json:"schedule,omitempty"`
}

// AccessReview is one page of GET /securitysystems/{id}/access.
type AccessReview struct {
	SecuritySystemID string       `json:"securitySystemId"`
	Users            []AccessUser `json:"users"`
	// NextCursor is nil on the last page.
	NextCursor *string `json:"nextCursor"`
}

// AccessQuery selects a page of an access review: Limit 0 is the
// service's default, Cursor the previous page's NextCursor, UserID "me"
// (or a user id) restricts it to one user.
type AccessQuery struct {
	Limit  int
	Cursor string
	UserID string
}

// Access reads one page of a system's access review (GET
// /securitysystems/{id}/access): who may view, arm or disarm it, and why.
func (c *Client) Access(ctx context.Context, id string, q AccessQuery) (AccessReview, error) {
	v := url.Values{}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.UserID != "" {
		v.Set("userId", q.UserID)
	}
	path := "/securitysystems/" + seg(id) + "/access"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out AccessReview
	_, err := c.Do(ctx, ServiceSecuritySystem, "GET", path, nil, &out)
	return out, err
}

// AccessAll reads every page of a system's access review.
func (c *Client) AccessAll(ctx context.Context, id string, q AccessQuery) (AccessReview, error) {
	var all AccessReview
	for {
		page, err := c.Access(ctx, id, q)
		if err != nil {
			return AccessReview{}, err
		}
		all.SecuritySystemID = page.SecuritySystemID
		all.Users = append(all.Users, page.Users...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return all, nil
		}
		q.Cursor = *page.NextCursor
	}
}

// SystemQuery selects a page of GET /securitysystems (API.md, "Lists"):
// Q is "name contains", case-insensitive; Limit 0 is the service's
// default; Cursor is the previous page's NextCursor.
type SystemQuery struct {
	Q      string
	Limit  int
	Cursor string
}

// SystemPage is one page of GET /securitysystems.
type SystemPage struct {
	SecuritySystems []SecuritySystem `json:"securitySystems"`
	NextCursor      *string          `json:"nextCursor"`
}

// SearchSecuritySystems reads one page of the systems the caller may view
// that match q.
func (c *Client) SearchSecuritySystems(ctx context.Context, q SystemQuery) (SystemPage, error) {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	path := "/securitysystems"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out SystemPage
	_, err := c.Do(ctx, ServiceSecuritySystem, "GET", path, nil, &out)
	return out, err
}
