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
	// Kind names the kind of id a uuid field expects (for suggestions).
	Kind string
}

func adminFields(prefix string) []formField {
	return []formField{
		{Name: prefix + "email", Label: "Administrator e-mail", Type: "email", Required: true, Help: "The administrator logs in with this address."},
		{Name: prefix + "firstName", Label: "First name", Type: "text", Required: true},
		{Name: prefix + "lastName", Label: "Last name", Type: "text", Required: true},
		{Name: prefix + "password", Label: "Initial password", Type: "password", Help: "Optional: leave empty to have one generated and shown once."},
	}
}

// platformForms are the forms of RealGuardIO staff.
func platformForms(admin, dealerAdmin bool) []apiForm {
	var out []apiForm
	if admin {
		out = append(out,
			apiForm{ID: "create-customer", Title: "Create a customer", Method: "POST", Path: "/api/customers", Remember: "customer",
				Fields: append([]formField{{Name: "name", Label: "Customer name", Type: "text", Required: true}}, adminFields("administrator.")...), Submit: "Create customer"},
			apiForm{ID: "create-provider", Title: "Create a monitoring provider", Method: "POST", Path: "/api/monitoring-providers", Remember: "monitoring-provider",
				Fields: append([]formField{{Name: "name", Label: "Provider name", Type: "text", Required: true}}, adminFields("administrator.")...), Submit: "Create monitoring provider"},
		)
	}
	if dealerAdmin {
		out = append(out, apiForm{ID: "create-dealer", Title: "Onboard a dealer", Method: "POST", Path: "/api/dealers", Remember: "dealer",
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
				{Name: "password", Label: "Initial password", Type: "password", Help: "Optional: leave empty to have one generated and shown once."},
			}, Submit: "Add employee"},
		{ID: "employee-roles", Title: "Organization roles of an employee", Help: "Replaces the employee's roles with the ones checked.", Method: "PUT",
			Path: base + "/{" + orgParam + "}/employees/{employeeId}/roles",
			Fields: []formField{org,
				{Name: "path:employeeId", Label: "Employee id", Type: "uuid", Kind: "employee", Required: true},
				{Name: "roles", Label: "Roles", Type: "roles", Options: policy.OrganizationRoles(kind)},
			}, Submit: "Save roles"},
	}
}

// customerForms are the forms of a customer's employee administrator.
func customerForms(customerID string) []apiForm {
	org := formField{Name: "path:customerId", Type: "hidden", Value: customerID}
	base := "/api/customers/{customerId}"
	forms := orgEmployeeForms("/api/customers", "customerId", customerID, policy.OrgCustomer)
	forms = append(forms,
		apiForm{ID: "create-location", Title: "Create a location", Method: "POST", Path: base + "/locations", Remember: "location",
			Fields: []formField{org,
				{Name: "name", Label: "Location name", Type: "text", Required: true},
				{Name: "dealerId", Label: "Dealer id", Type: "uuid", Kind: "dealer", Help: "Optional: the dealer that services the location."},
			}, Submit: "Create location"},
		apiForm{ID: "location-dealer", Title: "Dealer of a location", Help: "Leave the dealer empty to clear it.", Method: "PUT", Path: base + "/locations/{locationId}/dealer",
			Fields: []formField{org,
				{Name: "path:locationId", Label: "Location id", Type: "uuid", Kind: "location", Required: true},
				{Name: "dealerId", Label: "Dealer id", Type: "uuid", Kind: "dealer", Null: true},
			}, Submit: "Save dealer"},
		apiForm{ID: "create-team", Title: "Create a team", Method: "POST", Path: base + "/teams", Remember: "team",
			Fields: []formField{org, {Name: "name", Label: "Team name", Type: "text", Required: true}}, Submit: "Create team"},
		apiForm{ID: "add-member", Title: "Add a team member", Method: "PUT", Path: base + "/teams/{teamId}/members/{employeeId}",
			Fields: []formField{org,
				{Name: "path:teamId", Label: "Team id", Type: "uuid", Kind: "team", Required: true},
				{Name: "path:employeeId", Label: "Employee id", Type: "uuid", Kind: "employee", Required: true},
			}, Submit: "Add member"},
		apiForm{ID: "remove-member", Title: "Remove a team member", Method: "DELETE", Path: base + "/teams/{teamId}/members/{employeeId}", Danger: true,
			Fields: []formField{org,
				{Name: "path:teamId", Label: "Team id", Type: "uuid", Kind: "team", Required: true},
				{Name: "path:employeeId", Label: "Employee id", Type: "uuid", Kind: "employee", Required: true},
			}, Submit: "Remove member"},
		apiForm{ID: "location-employee-roles", Title: "Roles of an employee at a location", Help: "Replaces the employee's roles at the location; check none to revoke.", Method: "PUT",
			Path: base + "/locations/{locationId}/employee-roles/{employeeId}",
			Fields: []formField{org,
				{Name: "path:locationId", Label: "Location id", Type: "uuid", Kind: "location", Required: true},
				{Name: "path:employeeId", Label: "Employee id", Type: "uuid", Kind: "employee", Required: true},
				{Name: "roles", Label: "Roles", Type: "roles", Options: policy.SecuritySystemRoles},
			}, Submit: "Save location roles"},
		apiForm{ID: "location-team-roles", Title: "Roles of a team at a location", Help: "Replaces the team's roles at the location; check none to revoke.", Method: "PUT",
			Path: base + "/locations/{locationId}/team-roles/{teamId}",
			Fields: []formField{org,
				{Name: "path:locationId", Label: "Location id", Type: "uuid", Kind: "location", Required: true},
				{Name: "path:teamId", Label: "Team id", Type: "uuid", Kind: "team", Required: true},
				{Name: "roles", Label: "Roles", Type: "roles", Options: policy.SecuritySystemRoles},
			}, Submit: "Save team roles"},
		createSystemForm(customerID),
	)
	return forms
}

// dealerForms are the forms of a dealer's employee administrator.
func dealerForms(dealerID string) []apiForm {
	forms := orgEmployeeForms("/api/dealers", "dealerId", dealerID, policy.OrgDealer)
	return append(forms, apiForm{ID: "dealer-provider", Title: "Monitoring provider of the dealer", Help: "Leave empty to clear it.", Method: "PUT",
		Path: "/api/dealers/{dealerId}/monitoring-provider",
		Fields: []formField{{Name: "path:dealerId", Type: "hidden", Value: dealerID},
			{Name: "monitoringProviderId", Label: "Monitoring provider id", Type: "uuid", Kind: "monitoring-provider", Null: true},
		}, Submit: "Save monitoring provider"})
}

// monitoringForms are the forms of a monitoring provider's employee
// administrator.
func monitoringForms(providerID string) []apiForm {
	return orgEmployeeForms("/api/monitoring-providers", "providerId", providerID, policy.OrgMonitoringProvider)
}
