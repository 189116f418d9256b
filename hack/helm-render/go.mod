module vpcep.io/helm-render

go 1.19

require (
	github.com/Masterminds/sprig/v3 v3.2.3
	github.com/ghodss/yaml v1.0.0
	github.com/xeipuuv/gojsonschema v1.2.0
)
