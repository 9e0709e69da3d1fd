package bff

import "github.com/realguardio/realguardio/internal/policy"

// apiForm describes one administration form: one API call. The page renders
// it and app.js submits it, so adding an API call to the UI is adding a value
// here.
type apiForm struct {
	ID     string
	Title  string
	Help   string
	Method string
	// Path is the API path with {placeholders} filled from the fields whose
	// Name starts with "path:".
	Path   string
	Fields []formField
	Submit string
	// Remember names the kind of id the response's "id" is (employee,
	// location, team, ...), so the page can offer it later in id fields.
	Remember string
	// Danger marks a destructive call (styled differently).
	Danger bool
	// Current holds the values the editor opens with, by key: the values
	// of the Key fields joined by a space ("" for an editor of one fixed
	// thing). The page ticks and selects them, shows what a change would
	// do before it is saved, and asks before anything is taken away.
	Current map[string]any
	// Key names the fields (path parameters) whose choice selects the
	// Current entry, in order.
	Key []string
	// Unique is the list API of the kind the form creates, whose q filter
	// finds a namesake: the page warns before a second "Globex" is made.
	// UniqueKey is the response's collection key.
	Unique, UniqueKey string
	// Membership, for removing a team member, maps "teamId employeeId" to
	// true for the current members, so removing a non-member says so
	// instead of "Saved.".
	Membership map[string]bool
	// Effect says the change alters who may do what, so the result says
	// when it takes effect under the running strategy.
	Effect bool
	// Confirm, when set, is the question the page asks before sending
	// (ConfirmYes labels its button); Reload reloads the page after a
	// success, for a change the page's facts show.
	Confirm, ConfirmYes string
	Reload              bool
	// Then is the page to open after a success (the organization's page
	// after a deletion).
	Then string
}

// formField is one input. Name is a JSON path into the request body
// ("administrator.email") or "path:name" for a path parameter.
type formField struct {
	Name     string
	Label    string
	Type     string // text, email, password, uuid, roles, hidden
	Required bool
	Options  []string
	Value    string
	Help     string
	// Null sends JSON null for an empty value instead of leaving it out.
	Null bool
	// Kind names the kind of id a uuid field expects (for suggestions);
	// "bool" makes a hidden field send true or false, not a string.
	Kind string
}

func adminFields(prefix string) []formField {
	return []formField{
		{Name: prefix + "email", Label: "Administrator e-mail", Type: "email", Required: true, Help: "The administrator logs in with this address."},
		{Name: prefix + "firstName", Label: "First name", Type: "text", Required: true},
		{Name: prefix + "lastName", Label: "Last name", Type: "text", Required: true},
		{Name: prefix + "password", Label: "Initial password", Type: "password", Help: "Optional: leave empty to have one generated and shown once. The administrator must choose their own password at the first login."},
	}
}

// platformForms are the forms of RealGuardIO staff.
func platformForms(admin, dealerAdmin bool) []apiForm {
	var out []apiForm
	if admin {
		out = append(out,
			apiForm{ID: "create-customer", Title: "Create a customer", Method: "POST", Path: "/api/customers", Remember: "customer", Unique: "/api/customers", UniqueKey: "customers",
				Fields: append([]formField{{Name: "name", Label: "Customer name", Type: "text", Required: true}}, adminFields("administrator.")...), Submit: "Create customer"},
			apiForm{ID: "create-provider", Title: "Create a monitoring provider", Method: "POST", Path: "/api/monitoring-providers", Remember: "monitoring-provider", Unique: "/api/monitoring-providers", UniqueKey: "monitoringProviders",
				Fields: append([]formField{{Name: "name", Label: "Provider name", Type: "text", Required: true}}, adminFields("administrator.")...), Submit: "Create monitoring provider"},
		)
	}
	if dealerAdmin {
		out = append(out, apiForm{ID: "create-dealer", Title: "Onboard a dealer", Method: "POST", Path: "/api/dealers", Remember: "dealer", Unique: "/api/dealers", UniqueKey: "dealers",
			Fields: append([]formField{{Name: "name", Label: "Dealer name", Type: "text", Required: true}}, adminFields("administrator.")...), Submit: "Onboard dealer"})
	}
	if admin {
		out = append(out, createSystemForm(""))
	}
	return out
}

func createSystemForm(_ string) apiForm {
	return apiForm{ID: "create-system", Title: "Create a security system", Method: "POST", Path: "/api/securitysystems", Remember: "securitysystem",
		Fields: []formField{
			{Name: "locationId", Label: "Location id", Type: "uuid", Kind: "location", Required: true},
			{Name: "name", Label: "System name", Type: "text", Required: true},
		}, Submit: "Create security system"}
}

// orgEmployeeForms are the employee forms every kind of organization has.
func orgEmployeeForms(base, orgParam, orgID string, kind policy.OrgKind) []apiForm {
	org := formField{Name: "path:" + orgParam, Type: "hidden", Value: orgID}
	return []apiForm{
		{ID: "add-employee", Title: "Add an employee", Method: "POST", Path: base + "/{" + orgParam + "}/employees", Remember: "employee",
			Fields: []formField{org,
				{Name: "email", Label: "E-mail", Type: "email", Required: true, Help: "The employee logs in with this address."},
				{Name: "firstName", Label: "First name", Type: "text", Required: true},
				{Name: "lastName", Label: "Last name", Type: "text", Required: true},
				{Name: "password", Label: "Initial password", Type: "password", Help: "Optional: leave empty to have one generated and shown once. The employee must choose their own password at the first login."},
			}, Submit: "Add employee"},
		employeeRolesForm(base, orgParam, orgID, kind, ""),
	}
}

// pick is an id field: a choice of kind, or, on the page of one entity
// (fixed non-empty), that entity as a hidden value.
func pick(name, label, kind, fixed string) formField {
	if fixed != "" {
		return formField{Name: name, Type: "hidden", Value: fixed}
	}
	return formField{Name: name, Label: label, Type: "uuid", Kind: kind, Required: true}
}

// employeeRolesForm edits an employee's organization roles: of the chosen
// employee, or of employee when it is non-empty.
func employeeRolesForm(base, orgParam, orgID string, kind policy.OrgKind, employee string) apiForm {
	return apiForm{ID: "employee-roles", Title: "Organization roles", Help: "The roles ticked are the employee's roles in the whole organization; untick one to take it away.", Method: "PUT",
		Path: base + "/{" + orgParam + "}/employees/{employeeId}/roles", Key: []string{"path:employeeId"}, Effect: true,
		Fields: []formField{{Name: "path:" + orgParam, Type: "hidden", Value: orgID},
			pick("path:employeeId", "Employee id", "employee", employee),
			{Name: "roles", Label: "Roles", Type: "roles", Options: policy.OrganizationRoles(kind)},
		}, Submit: "Save roles"}
}

// locationDealerForm edits the dealer of a location.
func locationDealerForm(customerID, location string) apiForm {
	return apiForm{ID: "location-dealer", Title: "Dealer of a location", Help: "Choose None to clear it: the dealer's and its monitoring provider's employees then lose their access here.", Method: "PUT",
		Path: "/api/customers/{customerId}/locations/{locationId}/dealer", Key: []string{"path:locationId"}, Effect: true,
		Fields: []formField{{Name: "path:customerId", Type: "hidden", Value: customerID},
			pick("path:locationId", "Location id", "location", location),
			{Name: "dealerId", Label: "Dealer id", Type: "uuid", Kind: "dealer", Null: true},
		}, Submit: "Save dealer"}
}

// memberForm adds (remove false) or removes a member of a team.
func memberForm(customerID, team, employee string, remove bool) apiForm {
	f := apiForm{ID: "add-member", Title: "Add a team member", Method: "PUT", Path: "/api/customers/{customerId}/teams/{teamId}/members/{employeeId}", Effect: true,
		Fields: []formField{{Name: "path:customerId", Type: "hidden", Value: customerID},
			pick("path:teamId", "Team id", "team", team),
			pick("path:employeeId", "Employee id", "employee", employee),
		}, Submit: "Add member"}
	if remove {
		f.ID, f.Title, f.Method, f.Danger, f.Submit = "remove-member", "Remove a team member", "DELETE", true, "Remove member"
	}
	return f
}

// locationRolesForm edits the roles of an employee (team false) or a team
// at a location; fixed ids make it the editor of one location, employee or
// team page.
func locationRolesForm(customerID, location, holder string, team bool) apiForm {
	f := apiForm{ID: "location-employee-roles", Title: "Roles of an employee at a location", Help: "The roles ticked are held at the location; untick all to revoke.", Method: "PUT",
		Path: "/api/customers/{customerId}/locations/{locationId}/employee-roles/{employeeId}", Key: []string{"path:locationId", "path:employeeId"}, Effect: true,
		Fields: []formField{{Name: "path:customerId", Type: "hidden", Value: customerID},
			pick("path:locationId", "Location id", "location", location),
			pick("path:employeeId", "Employee id", "employee", holder),
			{Name: "roles", Label: "Roles", Type: "roles", Options: policy.SecuritySystemRoles},
		}, Submit: "Save location roles"}
	if team {
		f.ID, f.Title, f.Submit = "location-team-roles", "Roles of a team at a location", "Save team roles"
		f.Path = "/api/customers/{customerId}/locations/{locationId}/team-roles/{teamId}"
		f.Key = []string{"path:locationId", "path:teamId"}
		f.Fields[2] = pick("path:teamId", "Team id", "team", holder)
	}
	return f
}

// customerForms are the forms of a customer's employee administrator.
func customerForms(customerID string) []apiForm {
	org := formField{Name: "path:customerId", Type: "hidden", Value: customerID}
	base := "/api/customers/{customerId}"
	forms := orgEmployeeForms("/api/customers", "customerId", customerID, policy.OrgCustomer)
	forms = append(forms,
		apiForm{ID: "create-location", Title: "Create a location", Method: "POST", Path: base + "/locations", Remember: "location",
			Unique: "/api/customers/" + customerID + "/locations", UniqueKey: "locations",
			Fields: []formField{org,
				{Name: "name", Label: "Location name", Type: "text", Required: true},
				{Name: "dealerId", Label: "Dealer id", Type: "uuid", Kind: "dealer", Help: "Optional: the dealer that services the location."},
			}, Submit: "Create location"},
		locationDealerForm(customerID, ""),
		apiForm{ID: "create-team", Title: "Create a team", Method: "POST", Path: base + "/teams", Remember: "team",
			Unique: "/api/customers/" + customerID + "/teams", UniqueKey: "teams",
			Fields: []formField{org, {Name: "name", Label: "Team name", Type: "text", Required: true}}, Submit: "Create team"},
		memberForm(customerID, "", "", false),
		memberForm(customerID, "", "", true),
		locationRolesForm(customerID, "", "", false),
		locationRolesForm(customerID, "", "", true),
		createSystemForm(customerID),
	)
	return forms
}

// dealerForms are the forms of a dealer's employee administrator.
func dealerForms(dealerID string) []apiForm {
	forms := orgEmployeeForms("/api/dealers", "dealerId", dealerID, policy.OrgDealer)
	return append(forms, apiForm{ID: "dealer-provider", Title: "Monitoring provider of the dealer", Help: "Choose None to clear it: the provider's employees then lose their access to the dealer's locations.", Method: "PUT",
		Path: "/api/dealers/{dealerId}/monitoring-provider", Key: []string{}, Effect: true,
		Fields: []formField{{Name: "path:dealerId", Type: "hidden", Value: dealerID},
			{Name: "monitoringProviderId", Label: "Monitoring provider id", Type: "uuid", Kind: "monitoring-provider", Null: true},
		}, Submit: "Save monitoring provider"})
}

// monitoringForms are the forms of a monitoring provider's employee
// administrator.
func monitoringForms(providerID string) []apiForm {
	return orgEmployeeForms("/api/monitoring-providers", "providerId", providerID, policy.OrgMonitoringProvider)
}

// formContext is what the "apiform" partial renders: a form and the
// directory that offers its ids by name.
type formContext struct {
	F   apiForm
	Dir *directory
}

// scheduleEditor is what the "schedule-editor" partial renders: the
// employees path, the current schedules by employee id as JSON, the
// employee when the page is one employee's, and the directory.
type scheduleEditor struct {
	Base, Current, Employee string
	Dir                     *directory
}
