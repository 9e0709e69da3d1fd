// Package openfga holds the delegate strategy's OpenFGA authorization model
// (model.fga, AUTHZ.md's rule with schedules as a condition) and the pure
// mapping from authorization facts to its tuples and Check requests, so the
// authorization-sync service and the Security System Service agree on one
// encoding. It does no I/O.
package openfga

import (
	_ "embed"
	"fmt"
	"sync"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/openfga/language/pkg/go/transformer"
	"google.golang.org/protobuf/proto"
)

// ModelDSL is the authorization model in the OpenFGA DSL (schema 1.1).
//
//go:embed model.fga
var ModelDSL string

var (
	modelOnce  sync.Once
	modelProto *openfgav1.AuthorizationModel
	modelErr   error
)

// Model returns the authorization model compiled from ModelDSL, ready for
// WriteAuthorizationModel. Each call returns a fresh copy, so a caller may
// set fields such as the id without affecting others.
func Model() (*openfgav1.AuthorizationModel, error) {
	modelOnce.Do(func() {
		modelProto, modelErr = transformer.TransformDSLToProto(ModelDSL)
		if modelErr != nil {
			modelErr = fmt.Errorf("openfga: compile model.fga: %w", modelErr)
		}
	})
	if modelErr != nil {
		return nil, modelErr
	}
	return proto.Clone(modelProto).(*openfgav1.AuthorizationModel), nil
}

// WriteModelRequest returns the request that installs the model in store
// storeID.
func WriteModelRequest(storeID string) (*openfgav1.WriteAuthorizationModelRequest, error) {
	m, err := Model()
	if err != nil {
		return nil, err
	}
	return &openfgav1.WriteAuthorizationModelRequest{
		StoreId:         storeID,
		TypeDefinitions: m.GetTypeDefinitions(),
		SchemaVersion:   m.GetSchemaVersion(),
		Conditions:      m.GetConditions(),
	}, nil
}
